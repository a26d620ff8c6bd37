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


def assert_parity(ours: np.ndarray, ref: np.ndarray) -> None:
    """Same shape, every row of both L2-normalised, and the true cosine of each pair ≥ 0.99999.

    A bare dot product is not enough: a vector twice as long (not normalised) or a longer one pointing
    elsewhere can still reach 0.99999.
    """
    assert ours.shape == ref.shape
    for name, vectors in (("ours", ours), ("reference", ref)):
        norms = np.linalg.norm(vectors, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-5), f"{name} vectors are not L2-normalised: norms {norms}"
    cosine = (ours * ref).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert float(cosine.min()) >= 0.99999, f"cosine to the reference {cosine}"


@pytest.mark.parametrize("dim", [None, 32, 48])
def test_queries_match_reference(tiny_embedder, reference, dim) -> None:
    ours = tiny_embedder.embed_queries(QUERIES, dim=dim)
    ref = reference.embed([card_query(CARD_TASK, q) for q in QUERIES], dim=dim)
    assert_parity(ours, ref)


@pytest.mark.parametrize("dim", [None, 32, 48])
def test_documents_match_reference(tiny_embedder, reference, dim) -> None:
    ours = tiny_embedder.embed_documents(DOCS, dim=dim)
    assert_parity(ours, reference.embed(DOCS, dim=dim))


def test_named_and_free_instructions_match_reference(tiny_embedder, reference) -> None:
    task = INSTRUCTIONS["code_search"]
    ours = tiny_embedder.embed_queries(QUERIES, instruction="code_search")
    assert_parity(ours, reference.embed([card_query(task, q) for q in QUERIES]))
    free = "Given a question, find the answer"
    ours = tiny_embedder.embed_queries(QUERIES, instruction=free)
    assert_parity(ours, reference.embed([card_query(free, q) for q in QUERIES]))


def test_truncation_matches_reference(tiny_embedding_model: Path) -> None:
    from finesift import load_embedder

    ours = load_embedder(str(tiny_embedding_model), dtype="float32", device="cpu", max_length=24)
    ref = ReferenceEmbedder(str(tiny_embedding_model), dtype=torch.float32, max_length=24)
    assert_parity(ours.embed_documents(DOCS), ref.embed(DOCS))


def test_the_parity_check_refuses_unnormalised_or_turned_vectors(tiny_embedder, reference) -> None:
    ref = reference.embed(DOCS)
    assert_parity(ref.copy(), ref)
    with pytest.raises(AssertionError, match="not L2-normalised"):
        assert_parity(ref * 2.0, ref)  # a dot product of 2 passed the old one-sided check
    turned = ref + 0.3 * np.roll(ref, 1, axis=1)
    with pytest.raises(AssertionError):
        assert_parity(turned, ref)
    with pytest.raises(AssertionError, match="cosine"):
        assert_parity(turned / np.linalg.norm(turned, axis=1, keepdims=True), ref)
