"""The Ollama reranker against a loopback server speaking Ollama's /api/generate with logprobs.

The server computes next-token log-probabilities with a real tiny Qwen3-Reranker in float32, so
the client's P(yes) is compared with the model card's reference code on the same checkpoint.
"""

from __future__ import annotations

import logging
import math

import pytest

from finesift import load_reranker
from finesift.doctor.probes import PROBES
from finesift.errors import BackendError, NotFound
from finesift.rerank import ollama
from finesift.rerank.prompts import DEFAULT_INSTRUCTION, PREFIX, SUFFIX, head, pair_ids, prompt_text
from finesift.rerank.transformers import TransformersReranker
from finesift.testing.http import Faults, ServerState, protocol_server
from finesift.testing.reference import ReferenceReranker

pytestmark = [pytest.mark.slow, pytest.mark.service]
MODEL = "dengcao/Qwen3-Reranker-0.6B:F16"


@pytest.fixture(scope="module")
def reference(tiny_ollama_reranker_model) -> ReferenceReranker:
    import torch

    return ReferenceReranker(str(tiny_ollama_reranker_model), dtype=torch.float32)


def _state(generator, **faults) -> ServerState:
    return ServerState(generator=generator, ollama_models=(MODEL,), faults=Faults(**faults))


def test_prompt_text_tokenizes_to_the_ids_every_local_backend_feeds(tiny_ollama_reranker_model) -> None:
    local = TransformersReranker(tiny_ollama_reranker_model, device="cpu", dtype="float32")
    for query, docs in PROBES.rerank:
        task = query.instruction or DEFAULT_INSTRUCTION
        for doc in docs:
            text = prompt_text(instruction=task, query=query.text, document=doc)
            ids, _ = pair_ids(
                local.tokenizer,
                local.tokens,
                instruction=task,
                query=query.text,
                document=doc,
                max_length=8192,
            )
            assert local.tokenizer.encode(text, add_special_tokens=False) == ids


def test_scores_match_the_model_card_reference(ollama_generator, reference) -> None:
    with protocol_server(_state(ollama_generator)) as (url, state):
        reranker = load_reranker(f"ollama:{MODEL}", backend="ollama", url=url, keep_alive="-1")
        for query, docs in PROBES.rerank:
            got = reranker.score_detailed(query.text, list(docs))
            want = reference.score(query.text, list(docs))
            assert got.scores == pytest.approx(want, abs=1e-5)
            assert got.truncated == 0 and all(n > 0 for n in got.tokens)
    assert reranker.backend.floored_pairs == 0
    assert reranker.backend.scored_pairs == sum(len(d) for _, d in PROBES.rerank)
    # pairs go out concurrently (reranker.max_concurrent): find the first pair's request by its prompt
    query, docs = PROBES.rerank[0]
    want_prompt = PREFIX + head(DEFAULT_INSTRUCTION, query.text) + " " + docs[0] + SUFFIX
    generated = [r for r in state.requests if r["path"] == "/api/generate"]
    sent = next((r for r in generated if r["prompt"] == want_prompt), None)
    assert sent is not None, [r["prompt"] for r in generated[:2]]
    assert sent["model"] == MODEL and sent["raw"] is True and sent["stream"] is False
    assert sent["logprobs"] is True and sent["top_logprobs"] == 20
    assert sent["options"] == {"num_predict": 1, "temperature": 0, "num_ctx": 8192}
    assert sent["keep_alive"] == -1
    assert [r["path"] for r in state.requests[:1]] == ["/api/show"]


def test_a_token_missing_from_the_top_list_is_floored_and_counted(
    ollama_generator, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(ollama, "TOP_LOGPROBS", 1)
    query, docs = PROBES.rerank[0]
    with protocol_server(_state(ollama_generator)) as (url, _):
        reranker = load_reranker(MODEL, backend="ollama", url=url)
        with caplog.at_level(logging.WARNING, logger="finesift.rerank.ollama"):
            got = reranker.score(query.text, list(docs[:3]))
    assert reranker.backend.floored_pairs == 3
    assert "3 of 3 pairs" in caplog.text and "-10" in caplog.text
    for doc, score in zip(docs[:3], got, strict=True):
        text = prompt_text(instruction=DEFAULT_INSTRUCTION, query=query.text, document=doc)
        (top_token, top_logprob), *_ = ollama_generator.next_token(text, top_n=1, num_ctx=8192).top
        diff = top_logprob + 10.0 if top_token == "yes" else -10.0 - top_logprob
        assert score == pytest.approx(1 / (1 + math.exp(-diff)), abs=1e-6)


@pytest.mark.parametrize("version", ["0.12.10", "0.11.4", "v0.9.0"])
def test_a_server_too_old_for_logprobs_is_refused(ollama_generator, version: str) -> None:
    state = _state(ollama_generator, ollama_version=version)
    with (
        protocol_server(state) as (url, _),
        pytest.raises(BackendError, match=r"needs Ollama >= 0\.12\.11") as info,
    ):
        load_reranker(MODEL, backend="ollama", url=url)
    assert version.lstrip("v") in str(info.value) and "\n" not in str(info.value)


def test_an_answer_without_logprobs_is_refused(ollama_generator) -> None:
    from finesift.settings import RerankSettings

    with protocol_server(_state(ollama_generator, ollama_version="0.12.3")) as (url, _):
        backend = ollama.OllamaReranker(RerankSettings(model=MODEL, backend="ollama", url=url))
        with pytest.raises(BackendError, match=r"without logprobs.*0\.12\.11"):
            backend.score("q", ["d"], instruction=DEFAULT_INSTRUCTION)


def test_a_model_the_server_lacks_says_how_to_pull_it(ollama_generator) -> None:
    with protocol_server(_state(ollama_generator)) as (url, _), pytest.raises(NotFound, match="ollama pull"):
        load_reranker("nonesuch:latest", backend="ollama", url=url)


@pytest.mark.parametrize("limit", [1, 3])
def test_requests_in_flight_never_exceed_the_limit(ollama_generator, limit: int) -> None:
    query, docs = PROBES.rerank[0]
    with protocol_server(_state(ollama_generator, generate_delay_s=0.2)) as (url, state):
        reranker = load_reranker(MODEL, backend="ollama", url=url, max_concurrent=limit)
        scores = reranker.score(query.text, list(docs[:3]) * 2)
    assert len(scores) == 6 and scores[:3] == scores[3:]
    assert state.max_in_flight <= limit
    if limit > 1:
        assert state.max_in_flight > 1


def test_only_the_document_is_cut_to_fit_the_context(ollama_generator, reference) -> None:
    query, docs = PROBES.rerank[0]
    long_doc = docs[-1]
    with protocol_server(_state(ollama_generator)) as (url, state):
        reranker = load_reranker(MODEL, backend="ollama", url=url, max_length=256)
        out = reranker.score_detailed(query.text, [docs[0], long_doc])
    assert out.truncated == 1
    assert out.tokens[1] < 256
    prompts = [r["prompt"] for r in state.requests if r["path"] == "/api/generate"]
    start = PREFIX + head(DEFAULT_INSTRUCTION, query.text) + " "
    assert all(p.startswith(start) and p.endswith(SUFFIX) for p in prompts)
    sent_doc = [p[len(start) : -len(SUFFIX)] for p in prompts if p != start + docs[0] + SUFFIX][-1]
    assert long_doc.startswith(sent_doc) and len(sent_doc) < len(long_doc)
    assert out.scores[1] == pytest.approx(reference.score(query.text, [sent_doc])[0], abs=1e-5)


def test_cli_reranks_through_ollama_and_refuses_an_old_server(ollama_generator, reference, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from finesift.cli.app import app

    query, docs = PROBES.rerank[1]
    args = ["rerank", "-q", query.text, "--backend", "ollama", "--model", MODEL, "--max-concurrent", "2"]
    with protocol_server(_state(ollama_generator)) as (url, state):
        result = CliRunner().invoke(
            app, ["--home", str(tmp_path), *args, "--url", url, "--keep-alive", "5m"], input="\n".join(docs)
        )
    assert result.exit_code == 0, result.output
    scores = [json.loads(line)["score"] for line in result.stdout.splitlines()]
    assert scores == pytest.approx(reference.score(query.text, list(docs)), abs=1e-5)
    assert {r.get("keep_alive") for r in state.requests if r["path"] == "/api/generate"} == {"5m"}
    with protocol_server(_state(ollama_generator, ollama_version="0.12.6")) as (url, _):
        old = CliRunner().invoke(app, ["--home", str(tmp_path), *args, "--url", url], input="x\n")
    assert old.exit_code != 0
    assert "Ollama 0.12.6" in old.output and "needs Ollama >= 0.12.11" in old.output
