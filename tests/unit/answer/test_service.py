"""The answerer's decisions without a store: refusal, passage filtering, budget, token counting."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from finesift.answer.prompt import estimate_tokens
from finesift.answer.service import Answerer
from finesift.errors import InvalidRequest
from finesift.settings import Settings
from finesift.types import Hit


def stub_kb(scores: list[float], *, reranker: str | None = "fake", embedder: Any = None) -> Any:
    hits = [Hit(f"d{i}", f"/docs/{i}.md", f"passage {i}", s, 0, 9) for i, s in enumerate(scores)]
    return SimpleNamespace(
        name="kb",
        manifest=SimpleNamespace(reranker_model=reranker),
        reranks=reranker is not None,  # KnowledgeBase.reranks: it records a reranker that is not off
        search=lambda query, options: hits[: options.top_k],
        embedder=embedder or SimpleNamespace(info=SimpleNamespace(local_tokenizer=False)),
    )


def test_passages_under_the_threshold_are_left_out() -> None:
    prepared = Answerer(stub_kb([0.9, 0.5, 0.1]), None, Settings()).prepare("q")
    assert prepared.prompt is not None and [c.score for c in prepared.prompt.citations] == [0.9, 0.5]


def test_refusal_when_the_best_is_under_the_threshold_or_nothing_is_found() -> None:
    for scores in ([0.19, 0.1], []):
        prepared = Answerer(stub_kb(scores), None, Settings()).prepare("q")
        assert prepared.prompt is None and prepared.refusal is not None
        assert prepared.refusal.startswith("No relevant context")
    assert Answerer(stub_kb([0.19]), None, Settings()).prepare("q", threshold=0.1).prompt is not None


def test_without_a_reranker_scores_are_not_probabilities_so_only_no_hits_refuses() -> None:
    prepared = Answerer(stub_kb([0.03, 0.01], reranker=None), None, Settings()).prepare("q")
    assert prepared.prompt is not None and len(prepared.prompt.citations) == 2


def test_bad_threshold_and_budget_are_clear_errors() -> None:
    with pytest.raises(InvalidRequest, match=r"\[0, 1\]"):
        Answerer(stub_kb([0.9]), None, Settings()).prepare("q", threshold=1.5)
    tight = Settings(llm={"context_tokens": 1024, "max_tokens": 1000})
    with pytest.raises(InvalidRequest, match="context_tokens"):
        Answerer(stub_kb([0.9]), None, tight).prepare("q")
    with pytest.raises(InvalidRequest, match="--llm-url"):
        Answerer(stub_kb([0.9]), None, Settings()).answer("q")


def test_without_a_local_tokenizer_the_estimate_counts() -> None:
    assert Answerer(stub_kb([0.9]), None, Settings()).count is estimate_tokens


@pytest.mark.slow
def test_a_local_qwen3_embedder_counts_with_its_tokenizer(tiny_embedder) -> None:
    answerer = Answerer(stub_kb([0.9], embedder=tiny_embedder), None, Settings())
    text = "如何优化数据库查询？Use an index."
    assert answerer.count([text]) == tiny_embedder.backend.count_tokens([text])
    estimate = Settings(answer={"tokenizer": "estimate"})
    assert Answerer(stub_kb([0.9], embedder=tiny_embedder), None, estimate).count is estimate_tokens
