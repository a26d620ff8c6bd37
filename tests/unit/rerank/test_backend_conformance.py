"""The RerankBackend conformance suite: every registered backend must pass it unchanged.

Each backend is built through the registry from settings, as in production: the fake, the tiny
random Qwen3 reranker (transformers), a tiny cross-encoder (sentence-transformers), and the remote
client against a loopback server speaking the Cohere/Jina protocol. Adding a backend to the
registry without a factory here fails :func:`test_every_registered_backend_has_a_factory`.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import numpy as np
import pytest

from finesift.rerank.base import RerankBackend, Reranker
from finesift.rerank.prompts import DEFAULT_INSTRUCTION
from finesift.rerank.registry import BACKENDS, create_backend
from finesift.settings import RerankSettings

QUERY = "what is an index"
DOCS = ["An index speeds up lookups.", "Bananas are yellow.", "索引是数据库中的数据结构。", "x" * 50]
LONG = "lorem ipsum dolor " * 100
#: Window per (query, document) pair of the local backends under test.
WINDOW = 96
#: Backends that tokenize and truncate pairs on this machine (the fake models no window).
LOCAL = {"transformers", "sentence-transformers", "llamacpp", "vllm"}

Factory = Callable[[pytest.FixtureRequest], AbstractContextManager[RerankBackend]]


def _local(model: Callable[[pytest.FixtureRequest], str], backend: str) -> Factory:
    def build(request: pytest.FixtureRequest) -> AbstractContextManager[RerankBackend]:
        settings = RerankSettings(
            model=model(request), backend=backend, device="cpu", dtype="float32", max_length=WINDOW
        )
        return nullcontext(create_backend(settings))

    return build


@contextmanager
def _remote(request: pytest.FixtureRequest) -> Iterator[RerankBackend]:
    from finesift.testing.http import protocol_server

    with protocol_server() as (url, _):
        yield create_backend(
            RerankSettings(model="m", backend="remote", url=url, max_retries=0, timeout_s=5.0)
        )


@contextmanager
def _ollama(request: pytest.FixtureRequest) -> Iterator[RerankBackend]:
    from finesift.testing.http import ServerState, protocol_server

    state = ServerState(generator=request.getfixturevalue("ollama_generator"))
    with protocol_server(state) as (url, _):
        yield create_backend(
            RerankSettings(model="m", backend="ollama", url=url, max_retries=0, timeout_s=60.0)
        )


def _gguf(request: pytest.FixtureRequest) -> str:
    from finesift.runtime.gguf import convert

    source = request.getfixturevalue("tiny_reranker_model")
    target = request.getfixturevalue("tmp_path_factory").mktemp("gguf") / "r.f32.gguf"
    return str(convert(source, target, kind="reranker", file_type="f32"))


def _fixture_path(name: str) -> Callable[[pytest.FixtureRequest], str]:
    return lambda request: str(request.getfixturevalue(name))


FACTORIES: dict[str, Factory] = {
    "fake": _local(lambda r: "fake", "fake"),
    "transformers": _local(_fixture_path("tiny_reranker_model"), "transformers"),
    "sentence-transformers": _local(_fixture_path("tiny_cross_encoder"), "sentence-transformers"),
    "remote": _remote,
    "ollama": _ollama,
    "llamacpp": _local(_gguf, "llamacpp"),
    "vllm": _local(_fixture_path("tiny_reranker_model"), "vllm"),
}


def _cannot_run(name: str) -> str | None:
    """Why a backend cannot run on this machine, or None."""
    find = importlib.util.find_spec
    if name == "llamacpp" and not (find("llama_cpp") and find("gguf")):
        return "llama-cpp-python and gguf are not installed (the llamacpp extra)"
    if name == "vllm":
        torch = pytest.importorskip("torch")
        if find("vllm") is None or not torch.cuda.is_available():
            return "vLLM needs its package and a CUDA GPU"
    if name == "sentence-transformers" and find("sentence_transformers") is None:
        return "sentence-transformers is not installed"
    return None


#: Remote clients talk to a loopback server, like the other remote tests (marked ``service``).
REMOTE = {"remote", "ollama"}
PARAMS = [pytest.param(n, marks=[pytest.mark.service] if n in REMOTE else []) for n in sorted(BACKENDS)]


@pytest.fixture(scope="module", params=PARAMS)
def named_backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, RerankBackend]]:
    name = str(request.param)
    reason = _cannot_run(name)
    if reason:
        pytest.skip(reason)
    with FACTORIES[name](request) as backend:
        yield name, backend


@pytest.fixture
def backend(named_backend: tuple[str, RerankBackend]) -> RerankBackend:
    return named_backend[1]


def test_every_registered_backend_has_a_factory() -> None:
    assert set(FACTORIES) == set(BACKENDS)


def test_it_speaks_the_protocol(backend: RerankBackend) -> None:
    assert isinstance(backend, RerankBackend)
    assert isinstance(backend.model_id, str) and backend.model_id
    assert isinstance(backend.max_length, int) and backend.max_length >= 16


def test_fingerprint_is_json_and_stable(backend: RerankBackend) -> None:
    fp = backend.fingerprint()
    assert json.loads(json.dumps(fp)) == fp
    assert fp["model"] and fp == backend.fingerprint()


def test_scores_are_probabilities_one_per_document(backend: RerankBackend) -> None:
    out = backend.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION)
    assert len(out.scores) == len(DOCS)
    assert all(isinstance(s, float) and math.isfinite(s) and 0.0 <= s <= 1.0 for s in out.scores)
    assert len(out.tokens) == len(DOCS) and all(n > 0 for n in out.tokens)
    assert out.truncated == 0


def test_a_score_does_not_depend_on_its_neighbours_or_order(backend: RerankBackend) -> None:
    batch = backend.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION).scores
    order = [3, 0, 2, 1]
    shuffled = backend.score(QUERY, [DOCS[i] for i in order], instruction=DEFAULT_INSTRUCTION).scores
    np.testing.assert_allclose(shuffled, [batch[i] for i in order], atol=2e-5)
    alone = backend.score(QUERY, [DOCS[2]], instruction=DEFAULT_INSTRUCTION).scores
    assert alone[0] == pytest.approx(batch[2], abs=2e-5)


def test_local_backends_truncate_pairs_to_their_window(named_backend: tuple[str, RerankBackend]) -> None:
    name, backend = named_backend
    if name not in LOCAL:
        pytest.skip(f"{name} does not cut pairs on this machine")
    assert backend.max_length == WINDOW
    out = backend.score(QUERY, [DOCS[0], LONG], instruction=DEFAULT_INSTRUCTION)
    assert out.truncated == 1 and out.tokens[1] == WINDOW and out.tokens[0] < WINDOW
    assert 0.0 <= out.scores[1] <= 1.0


def test_the_pipeline_above_it_ranks_by_the_backends_scores(backend: RerankBackend) -> None:
    reranker = Reranker(backend, instruction="code_search")
    scores = backend.score(QUERY, DOCS, instruction=reranker.default_instruction).scores
    expected = sorted(range(len(DOCS)), key=lambda i: (-scores[i], i))[:3]
    ranked = reranker.rerank(QUERY, DOCS, top_n=3)
    assert [r.index for r in ranked] == expected
    assert [r.score for r in ranked] == pytest.approx([scores[i] for i in expected], abs=2e-5)
    info = reranker.info
    assert (info.model_id, info.max_length, info.instruction) == (
        backend.model_id,
        backend.max_length,
        reranker.default_instruction,
    )
