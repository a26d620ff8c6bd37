"""Embedding parity with the model-card reference code, in fp32 on the same random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from finesift.embedding.instructions import INSTRUCTIONS  # noqa: E402
from finesift.testing.reference import ReferenceEmbedder  # noqa: E402

#: The Qwen3-Embedding model card's example, literally: its task and query format. Written out here, not
#: taken from finesift (or the reference module), so a drift in the project's default shows up.
CARD_TASK = "Given a web search query, retrieve relevant passages that answer the query"


def card_query(task: str, query: str) -> str:
    return f"Instruct: {task}\nQuery:{query}"


QUERIES = ["how do I sort a list in python", "如何优化数据库查询性能？", "what is the capital of France"]
DOCS = [
    "Use sorted(items) to get a new list, or items.sort() to sort in place.",
    "数据库索引可以显著加速查询。" * 6,
    "def add(a, b):\n    return a + b",
    "Paris.",
]


@pytest.fixture(scope="module")
def reference(tiny_embedding_model: Path) -> ReferenceEmbedder:
    return ReferenceEmbedder(str(tiny_embedding_model), dtype=torch.float32)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


@pytest.mark.parametrize("dim", [None, 32, 48])
def test_queries_match_reference(tiny_embedder, reference, dim) -> None:
    ours = tiny_embedder.embed_queries(QUERIES, dim=dim)
    ref = reference.embed([card_query(CARD_TASK, q) for q in QUERIES], dim=dim)
    assert ours.shape == ref.shape
    assert _min_cosine(ours, ref) >= 0.99999


@pytest.mark.parametrize("dim", [None, 32, 48])
def test_documents_match_reference(tiny_embedder, reference, dim) -> None:
    ours = tiny_embedder.embed_documents(DOCS, dim=dim)
    assert _min_cosine(ours, reference.embed(DOCS, dim=dim)) >= 0.99999


def test_named_and_free_instructions_match_reference(tiny_embedder, reference) -> None:
    task = INSTRUCTIONS["code_search"]
    ours = tiny_embedder.embed_queries(QUERIES, instruction="code_search")
    assert _min_cosine(ours, reference.embed([card_query(task, q) for q in QUERIES])) >= 0.99999
    free = "Given a question, find the answer"
    ours = tiny_embedder.embed_queries(QUERIES, instruction=free)
    assert _min_cosine(ours, reference.embed([card_query(free, q) for q in QUERIES])) >= 0.99999


def test_truncation_matches_reference(tiny_embedding_model: Path) -> None:
    from finesift import load_embedder

    ours = load_embedder(str(tiny_embedding_model), dtype="float32", device="cpu", max_length=24)
    ref = ReferenceEmbedder(str(tiny_embedding_model), dtype=torch.float32, max_length=24)
    assert _min_cosine(ours.embed_documents(DOCS), ref.embed(DOCS)) >= 0.99999
