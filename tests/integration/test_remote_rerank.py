"""The Cohere/Jina-shaped rerank client against a loopback server speaking the protocol."""

from __future__ import annotations

import math

import pytest

from finesift import load_reranker
from finesift.errors import BackendError
from finesift.rerank.fake import FakeReranker
from finesift.rerank.prompts import DEFAULT_INSTRUCTION
from finesift.testing.http import protocol_server

pytestmark = pytest.mark.service
DOCS = ["bm25 ranks documents", "cats sleep", "ranking with bm25 and dense vectors", "天气 很好", "bm25"]


def test_scores_in_input_order_across_batches_and_shuffled_results() -> None:
    with protocol_server() as (url, state):
        state.faults.shuffle = True
        reranker = load_reranker("Qwen/Qwen3-Reranker-0.6B", backend="remote", url=url, batch_size=2)
        scores = reranker.score("bm25 ranking", DOCS)
    expected = FakeReranker().score("bm25 ranking", DOCS, instruction=DEFAULT_INSTRUCTION).scores
    assert scores == pytest.approx(expected)
    assert [len(r["documents"]) for r in state.requests] == [2, 2, 1]
    assert all(r["top_n"] == len(r["documents"]) and "instruction" not in r for r in state.requests)


def test_custom_instruction_travels_as_extension_field() -> None:
    with protocol_server() as (url, state):
        load_reranker("m", backend="remote", url=url).score("q", ["d"], instruction="code_search")
    assert state.requests[-1]["instruction"].startswith("Given a natural language query")


def test_rerank_sorts_by_score() -> None:
    with protocol_server() as (url, _):
        ranked = load_reranker("m", url=url).rerank("bm25 ranking", DOCS, top_n=2)
    assert [r.index for r in ranked] == [2, 0]


@pytest.mark.parametrize(("value", "pattern"), [(float("nan"), "non-finite"), (3.5, "raw logits")])
def test_invalid_scores_are_refused(value: float, pattern: str) -> None:
    class Bad(FakeReranker):
        def score(self, query, documents, *, instruction):
            out = super().score(query, documents, instruction=instruction)
            return type(out)([value] * len(out.scores), out.tokens, 0)

    with protocol_server() as (url, state):
        state.reranker = Bad()
        if math.isnan(value):
            state.reranker = _NanReranker()
        with pytest.raises(BackendError, match=pattern):
            load_reranker("m", url=url).score("q", ["d"])


class _NanReranker(FakeReranker):
    """JSON has no NaN literal, but Python's json writes one: some servers do the same."""

    def score(self, query, documents, *, instruction):
        out = super().score(query, documents, instruction=instruction)
        return type(out)([float("nan")] * len(out.scores), out.tokens, 0)


def test_503_then_success_and_413_halving() -> None:
    with protocol_server() as (url, state):
        state.faults.failures, state.faults.max_batch = 1, 2
        scores = load_reranker("m", url=url, batch_size=8, max_retries=2).score("bm25", DOCS)
    # The scores the model gives, in input order, whatever the retries and the halving did.
    assert scores == pytest.approx(FakeReranker().score("bm25", DOCS, instruction=DEFAULT_INSTRUCTION).scores)
    # 5 met the 503 and was retried whole, refused (413), halved to 4 (refused), then 2 per request.
    assert [len(r["documents"]) for r in state.requests] == [5, 5, 4, 2, 2, 1]
