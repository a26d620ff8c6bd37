"""LanceDB's engine-side indexes: BM25 in Lance's inverted index, the ANN index past a size, old stores."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from finesift.lexical import BM25Index, tokenize
from finesift.store.base import DocumentWrite
from finesift.types import Chunk, DocumentInfo

pytest.importorskip("lancedb")
from finesift.store import lance_snapshot
from finesift.store.lance_index import LEX, LanceIndexOptions, has_vector_index
from finesift.store.lancedb import CHUNKS, LanceStore, Pointer

DIM = 16
WORDS = ["数据库", "索引", "getUserName", "snake_case_name", "alpha", "beta", "gamma", "delta"]


def write(doc_id: str, texts: list[str], rng: np.random.Generator) -> DocumentWrite:
    chunks = [Chunk(doc_id, i, t, 0, len(t), None, f"/d/{doc_id}.md", "md") for i, t in enumerate(texts)]
    vectors = rng.standard_normal((len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    info = DocumentInfo(doc_id, f"/d/{doc_id}.md", "md", f"h{doc_id}", "p", len(chunks), 10)
    return DocumentWrite(info, chunks, vectors, [tokenize(t) for t in texts])


def corpus(rng: np.random.Generator, n_docs: int, per_doc: int = 4) -> list[DocumentWrite]:
    texts = lambda d: [" ".join(rng.choice(WORDS, 5)) + f" d{d}c{i}" for i in range(per_doc)]  # noqa: E731
    return [write(f"d{d}", texts(d), rng) for d in range(n_docs)]


@pytest.fixture
def forbid_client_bm25(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if any search builds BM25 from every row in the process (what the engine index replaces)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("lexical search loaded every row into the client")

    for name in ("_Lexical", "_LegacyLexical"):
        monkeypatch.setattr(lance_snapshot, name, refuse, raising=False)


def test_bm25_runs_in_lance_and_stays_current(tmp_path: Path, forbid_client_bm25: None) -> None:
    rng = np.random.default_rng(1)
    store = LanceStore.create(tmp_path / "s", dimension=DIM)
    store.commit(upserts=corpus(rng, 6))
    store.optimize()  # the index now covers every row
    chunks = store._table(CHUNKS)
    assert [i.columns for i in chunks.list_indices()] == [[LEX]]
    store.commit(upserts=[write("new", ["zyzzyva 数据库设计 getUserName"], rng)], deletes=["d0"])
    snap = store.snapshot()
    # rows written after the index was refreshed are searched too; deleted ones never return
    assert [h.chunk.doc_id for h in snap.lexical_search(["zyzzyva"], k=3)] == ["new"]
    assert snap.lexical_search(["d0c1"], k=3) == []
    assert "new" in {h.chunk.doc_id for h in snap.lexical_search(tokenize("数据"), k=50)}  # CJK sub-word
    assert "new" in {h.chunk.doc_id for h in snap.lexical_search(tokenize("user name"), k=50)}  # camelCase


def test_old_store_without_token_column_falls_back_then_migrates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(2)
    docs = corpus(rng, 5)
    store = LanceStore.create(tmp_path / "s", dimension=DIM)
    store.commit(upserts=docs)
    chunks = store._table(CHUNKS)  # make it look like a store written before the column existed
    chunks.drop_index(f"{LEX}_idx")
    chunks.drop_columns([LEX])
    old = store._read_pointer()
    Pointer(old.seq, old.documents, chunks.version, old.compacted).write(store.path)
    all_chunks = [c for d in docs for c in d.chunks]
    reference = BM25Index([c.chunk_id for c in all_chunks], [c.text for c in all_chunks])
    query = "alpha 索引"
    want = [cid for cid, _ in reference.search(query, 5)]
    with caplog.at_level(logging.WARNING):
        legacy = LanceStore(store.path).snapshot().lexical_search(tokenize(query), k=5)
    assert [h.chunk.chunk_id for h in legacy] == want and "predates the full-text index" in caplog.text
    reopened = LanceStore(store.path)
    reopened.commit(upserts=[write("late", ["omega"], rng)])  # the first write adds column and index
    assert LEX in reopened._table(CHUNKS).schema.names
    snap = reopened.snapshot()
    assert [h.chunk.doc_id for h in snap.lexical_search(["omega"], k=2)] == ["late"]
    got = snap.lexical_search(tokenize(query), k=5)
    assert {h.chunk.chunk_id for h in got} <= set(reference.ids) and got


def recall_at_10(store: LanceStore, docs: list[DocumentWrite], queries: np.ndarray) -> float:
    vectors = np.concatenate([d.vectors for d in docs])
    ids = [c.chunk_id for d in docs for c in d.chunks]
    snap = store.snapshot()
    found = 0
    for q in queries:
        exact = {ids[i] for i in np.argsort(-(vectors @ q))[:10]}
        found += len(exact & {h.chunk.chunk_id for h in snap.search(q, k=10)})
    return found / (10 * len(queries))


def test_ann_index_past_the_threshold_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    docs = corpus(rng, 150)  # 600 chunks
    queries = np.concatenate([d.vectors[:1] for d in docs[:20]])
    small = LanceStore.create(tmp_path / "small", dimension=DIM, options=LanceIndexOptions(ann_min_rows=601))
    small.commit(upserts=docs)
    small.optimize()
    assert not has_vector_index(small._table(CHUNKS)) and recall_at_10(small, docs, queries) == 1.0
    options = LanceIndexOptions(ann_min_rows=600, nprobes=4)
    big = LanceStore.create(tmp_path / "big", dimension=DIM, options=options)
    big.commit(upserts=docs)
    big.optimize()
    assert has_vector_index(big._table(CHUNKS))
    assert recall_at_10(LanceStore(big.path, options=options), docs, queries) >= 0.9
    extra = corpus(np.random.default_rng(4), 1)[0]
    extra = DocumentWrite(
        DocumentInfo("x", "/d/x.md", "md", "hx", "p", len(extra.chunks), 10),
        [Chunk("x", c.index, c.text, c.start, c.end, c.page, "/d/x.md", "md") for c in extra.chunks],
        extra.vectors,
        extra.terms,
    )
    big.commit(upserts=[extra])  # not in the ANN index yet: found by the flat scan of new rows
    assert big.snapshot().search(extra.vectors[0], k=1)[0].chunk.doc_id == "x"


@pytest.mark.parametrize(("k", "refine"), [(100, 0), (10, 20)])
def test_hnsw_searches_beyond_its_candidate_list(tmp_path: Path, k: int, refine: int) -> None:
    """A search for more candidates than ``kb.ann_ef`` (a large k, or k x refine factor) still runs:
    Lance refuses an HNSW query whose ef is below what it asks the graph for."""
    rng = np.random.default_rng(5)
    docs = corpus(rng, 150)  # 600 chunks
    build = LanceIndexOptions(ann_min_rows=600, ann_index="IVF_HNSW_SQ")
    store = LanceStore.create(tmp_path / "kb", dimension=DIM, options=build)
    store.commit(upserts=docs)
    store.optimize()
    assert has_vector_index(store._table(CHUNKS))
    options = LanceIndexOptions(
        ann_min_rows=600, ann_index="IVF_HNSW_SQ", nprobes=4, refine_factor=refine, ef=8
    )
    hits = LanceStore(store.path, options=options).snapshot().search(docs[0].vectors[0], k=k)
    assert len(hits) == k and hits[0].chunk.doc_id == "d0"
