"""The EmbeddingBackend conformance suite: every registered backend must pass it unchanged.

Each backend is built through the registry from settings, exactly as in production: the fake, the
tiny random Qwen3 (transformers), a tiny sentence-transformers model, and the remote clients
against a loopback server speaking their protocol. Adding a backend to the registry without a
factory here fails :func:`test_every_registered_backend_has_a_factory`.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import pytest

from finesift.embedding.base import EmbeddingBackend, TokenizingBackend
from finesift.embedding.embedder import Embedder
from finesift.embedding.instructions import format_query
from finesift.embedding.registry import BACKENDS, create_backend
from finesift.errors import InvalidRequest
from finesift.settings import EmbeddingSettings

TEXTS = ["alpha beta gamma", "北京是中国的首都。", "def f(x):\n    return x * 2", "short"]
LONG = " ".join(["lorem ipsum dolor"] * 40)
#: Window of the local backends under test; every local one must truncate to it. TEXTS fit in it whatever
#: tokenizer the tiny models get (the tiny BERT's reads 19 tokens of wordpieces for the code text on
#: transformers 4.x), LONG does not.
WINDOW = 32
#: Backends that count and truncate on this machine (remote ones leave the window to their server).
LOCAL = {"fake", "transformers", "sentence-transformers", "llamacpp", "vllm"}

Factory = Callable[[pytest.FixtureRequest], AbstractContextManager[EmbeddingBackend]]


def _local(model: Callable[[pytest.FixtureRequest], str], backend: str) -> Factory:
    def build(request: pytest.FixtureRequest) -> AbstractContextManager[EmbeddingBackend]:
        settings = EmbeddingSettings(
            model=model(request), backend=backend, device="cpu", dtype="float32", max_length=WINDOW
        )
        return nullcontext(create_backend(settings))

    return build


def _remote(backend: str) -> Factory:
    from contextlib import contextmanager

    @contextmanager
    def build(request: pytest.FixtureRequest) -> Iterator[EmbeddingBackend]:
        from finesift.testing.http import protocol_server

        with protocol_server() as (url, _):
            settings = EmbeddingSettings(
                model="Qwen/Qwen3-Embedding-0.6B", backend=backend, url=url, max_retries=0, timeout_s=5.0
            )
            yield create_backend(settings)

    return build


def _gguf(request: pytest.FixtureRequest) -> str:
    from finesift.runtime.gguf import convert

    source = request.getfixturevalue("tiny_embedding_model")
    target = request.getfixturevalue("tmp_path_factory").mktemp("gguf") / "e.f32.gguf"
    return str(convert(source, target, kind="embedding", file_type="f32"))


FACTORIES: dict[str, Factory] = {
    "fake": _local(lambda r: "fake", "fake"),
    "transformers": _local(lambda r: str(r.getfixturevalue("tiny_embedding_model")), "transformers"),
    "sentence-transformers": _local(
        lambda r: str(r.getfixturevalue("tiny_st_model")), "sentence-transformers"
    ),
    "openai": _remote("openai"),
    "ollama": _remote("ollama"),
    "llamacpp": _local(_gguf, "llamacpp"),
    "vllm": _local(lambda r: str(r.getfixturevalue("tiny_embedding_model")), "vllm"),
}


def _cannot_run(name: str) -> str | None:
    """Why a backend cannot run on this machine, or None."""
    if name == "llamacpp" and not (
        importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("gguf")
    ):
        return "llama-cpp-python and gguf are not installed (the llamacpp extra)"
    if name == "vllm":
        torch = pytest.importorskip("torch")
        if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
            return "vLLM needs its package and a CUDA GPU"
    if name == "sentence-transformers" and importlib.util.find_spec("sentence_transformers") is None:
        return "sentence-transformers is not installed"
    return None


#: Remote clients talk to a loopback server, like the other remote tests (marked ``service``).
REMOTE = {"openai", "ollama"}
PARAMS = [pytest.param(n, marks=[pytest.mark.service] if n in REMOTE else []) for n in sorted(BACKENDS)]


@pytest.fixture(scope="module", params=PARAMS)
def named_backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, EmbeddingBackend]]:
    name = str(request.param)
    reason = _cannot_run(name)
    if reason:
        pytest.skip(reason)
    with FACTORIES[name](request) as backend:
        yield name, backend


@pytest.fixture
def backend(named_backend: tuple[str, EmbeddingBackend]) -> EmbeddingBackend:
    return named_backend[1]


def test_every_registered_backend_has_a_factory() -> None:
    assert set(FACTORIES) == set(BACKENDS)


def test_it_speaks_the_protocol(backend: EmbeddingBackend) -> None:
    assert isinstance(backend, EmbeddingBackend)
    assert isinstance(backend.model_id, str) and backend.model_id
    assert isinstance(backend.dimension, int) and backend.dimension >= 32
    assert isinstance(backend.max_length, int) and backend.max_length >= 16
    assert backend.query_format in ("qwen3", "none")


def test_fingerprint_is_json_and_stable(backend: EmbeddingBackend) -> None:
    fp = backend.fingerprint()
    assert json.loads(json.dumps(fp)) == fp
    assert fp["model"] and fp == backend.fingerprint()


def test_vectors_have_the_stated_shape_row_per_text(backend: EmbeddingBackend) -> None:
    out = backend.embed(TEXTS)
    assert out.vectors.shape == (len(TEXTS), backend.dimension) and out.vectors.dtype == np.float32
    assert np.all(np.isfinite(out.vectors))
    assert len(out.tokens) == len(TEXTS) and all(isinstance(n, int) and n > 0 for n in out.tokens)
    assert out.truncated == 0


def test_a_row_does_not_depend_on_its_neighbours_or_order(backend: EmbeddingBackend) -> None:
    batch = backend.embed(TEXTS).vectors
    order = [3, 0, 2, 1]
    shuffled = backend.embed([TEXTS[i] for i in order]).vectors
    np.testing.assert_allclose(shuffled, batch[order], atol=2e-5)
    alone = backend.embed([TEXTS[2]]).vectors
    np.testing.assert_allclose(alone[0], batch[2], atol=2e-5)


def test_token_counts_agree_with_embed_or_are_refused_clearly(
    named_backend: tuple[str, EmbeddingBackend],
) -> None:
    name, backend = named_backend
    try:
        counts = backend.count_tokens(TEXTS)
    except InvalidRequest as exc:
        assert name not in LOCAL and "on_overflow" in str(exc)
        return
    assert len(counts) == len(TEXTS) and all(n > 0 for n in counts)
    assert counts == backend.embed(TEXTS).tokens
    assert backend.count_tokens([TEXTS[0] + " " + TEXTS[0]])[0] > counts[0]


def test_local_backends_truncate_to_their_window(named_backend: tuple[str, EmbeddingBackend]) -> None:
    name, backend = named_backend
    if name not in LOCAL:
        pytest.skip(f"{name} leaves the window to its server")
    assert backend.max_length == WINDOW
    out = backend.embed([TEXTS[0], LONG])
    assert out.truncated == 1 and out.tokens[1] == WINDOW and out.tokens[0] < WINDOW
    assert backend.count_tokens([LONG])[0] > WINDOW
    assert np.all(np.isfinite(out.vectors))


def test_token_ids_path_equals_the_text_path(backend: EmbeddingBackend) -> None:
    if not isinstance(backend, TokenizingBackend):
        pytest.skip("the backend does not run from token ids")
    ids = backend.token_ids([*TEXTS, LONG])
    assert [len(r) for r in ids] == backend.count_tokens([*TEXTS, LONG])
    from_ids, from_texts = backend.embed_ids(ids), backend.embed([*TEXTS, LONG])
    np.testing.assert_allclose(from_ids.vectors, from_texts.vectors, atol=1e-6)
    assert (from_ids.tokens, from_ids.truncated) == (from_texts.tokens, from_texts.truncated)


def test_the_pipeline_above_it_formats_slices_and_normalises(backend: EmbeddingBackend) -> None:
    embedder = Embedder(backend, instruction="code_search")
    got = embedder.encode(TEXTS, input_type="query", dim=32).vectors
    task = embedder.default_instruction
    seen = [format_query(t, task) for t in TEXTS] if backend.query_format == "qwen3" else TEXTS
    head = backend.embed(seen).vectors[:, :32]
    np.testing.assert_allclose(got, head / np.linalg.norm(head, axis=1, keepdims=True), atol=2e-5)
    info: Any = embedder.info
    assert (info.model_id, info.dimension, info.max_length, info.query_format) == (
        backend.model_id,
        backend.dimension,
        backend.max_length,
        backend.query_format,
    )
