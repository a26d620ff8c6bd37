"""Retrieval: BM25 from stored terms, rare terms that dense misses, and hybrid beating either alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.embedding.embedder import Embedder
from finesift.embedding.fake import FakeEmbedder
from finesift.errors import InvalidRequest
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.lexical import BM25Index, tokenize
from finesift.retrieval.pipeline import SearchOptions, validate_options
from finesift.settings import SearchSettings, Settings
from finesift.store.base import Filters
from finesift.types import Document

SYNONYMS = {"automobile": "car", "physician": "doctor", "purchase": "buy", "repair": "fix", "large": "big"}


class SynonymEmbedder(FakeEmbedder):
    """The fake embedder plus a little 'semantics': synonyms map to one word before hashing."""

    def fingerprint(self) -> dict[str, object]:
        return {**super().fingerprint(), "model": "synonym-fake"}

    @property
    def query_format(self) -> QueryFormat:
        return "none"

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        mapped = [" ".join(SYNONYMS.get(w.lower(), w.lower()) for w in t.split()) for t in texts]
        return super().embed(mapped)


DOCS = {
    "car": "fix car engine",
    "doctor": "doctor visit cough",
    "buy": "buy big house",
    "err": "E4711X error code: the pool is exhausted",
    "err2": "Q9Z3 checksum mismatch during replication",
    # distractors: many words a bag-of-words embedder matches, all of them BM25 stopwords
    **{f"filler{i}": "it is as it was and that is in the " + "of " * i for i in range(6)},
    "kernel": "Linux kernel tuning for network throughput",
}
# query -> the one relevant document. Synonym queries need "semantics" (dense); code queries need exact terms.
LABELS = {
    "automobile repair": "car",
    "physician cough": "doctor",
    "purchase large house": "buy",
    "what is the E4711X that it is in the": "err",
    "it is the Q9Z3 that was in the": "err2",
}


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    pytest.importorskip("lancedb")
    settings = Settings(home=tmp_path, reranker={"model": "fake"})
    base = KnowledgeBase.create("labelled", settings=settings, embedder=Embedder(SynonymEmbedder(64)))
    base.add_documents([Document(f"mem://{k}.txt", v, "txt") for k, v in DOCS.items()])
    return base


def recall_at(kb: KnowledgeBase, mode: str, k: int = 1) -> float:
    found = 0
    for query, want in LABELS.items():
        hits = kb.search(query, SearchOptions(top_k=k, mode=mode, rerank=False))  # type: ignore[arg-type]
        found += any(h.source == f"mem://{want}.txt" for h in hits)
    return found / len(LABELS)


def test_bm25_finds_a_rare_exact_term_that_dense_misses(kb: KnowledgeBase) -> None:
    query = "what is the E4711X that it is in the"
    dense = kb.search(query, SearchOptions(top_k=1, mode="dense", rerank=False))
    bm25 = kb.search(query, SearchOptions(top_k=1, mode="bm25", rerank=False))
    assert bm25[0].source == "mem://err.txt"
    assert dense[0].source != "mem://err.txt"


def test_hybrid_beats_either_alone_on_labelled_queries(kb: KnowledgeBase) -> None:
    dense, bm25, hybrid = (recall_at(kb, m) for m in ("dense", "bm25", "hybrid"))
    assert hybrid > max(dense, bm25), (dense, bm25, hybrid)


def test_bm25_from_codes_equals_bm25_from_texts() -> None:
    texts = ["数据库 索引 优化", "getUserName returns the user name", "索引 索引 cache", ""]
    ids = ["a", "b", "c", "d"]
    terms = [tokenize(t) for t in texts]
    vocab = sorted({t for row in terms for t in row})
    codes = np.array([vocab.index(t) for row in terms for t in row])
    fast = BM25Index.from_codes(ids, vocab=vocab, codes=codes, lengths=np.array([len(r) for r in terms]))
    slow = BM25Index(ids, texts)
    for query in ["索引", "user name", "数据库优化", "missing"]:
        np.testing.assert_allclose(fast.scores(query), slow.scores(query))
        assert [i for i, _ in fast.search(query, 3)] == [i for i, _ in slow.search(query, 3)]


@pytest.mark.parametrize(
    "options",
    [
        {"top_k": 0},
        {"mode": "fuzzy"},
        {"dense_weight": 0, "bm25_weight": 0},
        {"candidates": 10_000},
        {"threshold": float("nan")},
        {"lexical_weight": 1.0},  # the old name of bm25_weight: one name per option
    ],
)
def test_bad_options_are_refused(options: dict) -> None:
    # SearchOptions validates on construction; validate_options re-checks one built unvalidated.
    with pytest.raises(InvalidRequest, match=next(iter(options))):
        SearchOptions(**options)
    if set(options) <= set(SearchOptions.model_fields):  # model_construct drops unknown names
        with pytest.raises(InvalidRequest):
            validate_options(SearchOptions.model_construct(**options))


def test_options_are_the_search_settings_with_overrides() -> None:
    settings = SearchSettings(top_k=7, mode="bm25", bm25_weight=2.0)
    options = SearchOptions.of(settings, top_k=3, mode=None, filters=Filters(file_types=("md",)))
    assert (options.top_k, options.mode, options.bm25_weight) == (3, "bm25", 2.0)
    assert options.filters.file_types == ("md",)
    assert set(SearchOptions.model_fields) - {"filters"} == set(SearchSettings.model_fields)
    assert settings.with_overrides(rerank=False).rerank is False
    with pytest.raises(InvalidRequest, match="rerank_top_n"):
        settings.with_overrides(rerank_top_n=0)
