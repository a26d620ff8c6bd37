"""The pgvector store's bulk path: a commit that grows the table past a share of what its HNSW index was
built over drops the index in its own transaction, later commits write without it, and compaction
builds it again. Rows, postings and search results are those of the incremental path; a crash keeps
the index; stores from before keep their index and get the bookkeeping on open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finesift.kb.compaction import Compaction
from finesift.lexical import tokenize
from finesift.settings import KBSettings
from finesift.store import pg_vector_index, pgvector
from finesift.store.base import DocumentWrite
from finesift.store.registry import open_store
from finesift.types import Chunk, DocumentInfo

pytestmark = pytest.mark.service
DIM = 8
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "数据库"]


def documents(first: int, count: int, rng: np.random.Generator, *, per_doc: int = 10) -> list[DocumentWrite]:
    out = []
    for d in range(first, first + count):
        doc_id, source = f"d{d}", f"/docs/d{d}.md"
        texts = [" ".join(rng.choice(WORDS, 4)) + f" d{d}x{i}" for i in range(per_doc)]
        chunks = [Chunk(doc_id, i, t, 0, len(t), None, source, "md") for i, t in enumerate(texts)]
        vectors = rng.standard_normal((per_doc, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        info = DocumentInfo(doc_id, source, "md", f"h-{doc_id}", "p", per_doc, 10 * per_doc)
        out.append(DocumentWrite(info, chunks, vectors, [tokenize(t) for t in texts]))
    return out


def hnsw(store: Any) -> str | None:
    rows = store.fetch(pg_vector_index.FIND)
    return str(rows[0][0]) if rows else None


def contents(store: Any) -> tuple[list[Any], list[Any]]:
    """Every chunk row (vector as text) and every posting, in key order; not the commit numbers."""
    chunks = store.fetch(
        "SELECT doc_id, superseded, idx, text, start_char, end_char, page, source, file_type, terms, "
        "vector::text FROM {chunks} ORDER BY doc_id, gen, idx"
    )
    postings = store.fetch("SELECT term, doc_id, idx, tf, dl FROM {post} ORDER BY term, doc_id, gen, idx")
    return [tuple(r) for r in chunks], [tuple(r) for r in postings]


def alter(store: Any, statement: str) -> None:
    with store.connection() as conn:
        conn.execute(store.sql(statement))


def searches(store: Any, queries: np.ndarray) -> list[Any]:
    snap = store.snapshot()
    dense = [[(h.chunk.chunk_id, h.score) for h in snap.search(q, k=5)] for q in queries]
    lexical = [(h.chunk.chunk_id, h.score) for h in snap.lexical_search(["alpha", "数据库"], k=10)]
    return [dense, lexical, snap.count_chunks()]


def test_a_bulk_commit_writes_what_the_incremental_path_writes(postgres_uri: str, tmp_path: Path) -> None:
    """One 1,200-chunk commit (index dropped, built by compaction) against the same chunks in commits of
    100 through the index (``index=none`` for the reference, so the comparison is exact): the same
    rows, postings, dense and BM25 results; then an incremental add keeps the rebuilt index."""
    docs = documents(0, 120, np.random.default_rng(1))
    bulk = open_store(postgres_uri, tmp_path / "bulk", dimension=DIM, create=True)
    small = open_store(postgres_uri + "&index=none", tmp_path / "small", dimension=DIM, create=True)
    bulk.commit(upserts=docs)
    for start in range(0, 120, 10):
        small.commit(upserts=docs[start : start + 10])
    assert hnsw(bulk) is None and bulk.optimize_due()  # type: ignore[attr-defined]
    queries = np.random.default_rng(2).standard_normal((5, DIM)).astype(np.float32)
    exact = searches(small, queries)
    assert searches(bulk, queries) == exact  # exact scan while the index is missing
    bulk.optimize()  # type: ignore[attr-defined]
    assert hnsw(bulk) == f'"{bulk.location.prefix}_hnsw"' and not bulk.optimize_due()  # type: ignore[attr-defined]
    got = searches(bulk, queries)
    assert got[1:] == exact[1:]
    assert sum(a[0] == b[0] for a, b in zip(got[0], exact[0], strict=True)) >= 4  # HNSW, nearly exact
    more = documents(120, 10, np.random.default_rng(3))
    bulk.commit(upserts=more)  # 100 rows < max(1,000, 25% of 1,200): through the index
    small.commit(upserts=more)
    assert hnsw(bulk) is not None and bulk.fetch("SELECT indexed_rows, added_rows FROM {meta}") == [
        (1200, 100)
    ]
    rows, postings = contents(bulk)
    assert (rows, postings) == contents(small)
    assert len(rows) == 1300 and len(postings) > 1300
    bulk.close()
    small.close()


def test_a_commit_dying_after_the_drop_keeps_the_index(
    postgres_uri: str, tmp_path: Path, monkeypatch
) -> None:
    store = open_store(postgres_uri, tmp_path / "store", dimension=DIM, create=True)
    rng = np.random.default_rng(4)
    store.commit(upserts=documents(0, 5, rng))
    before = contents(store)

    def die(step: str) -> None:
        if step == "chunks_added":
            raise RuntimeError("killed")

    monkeypatch.setattr(pgvector, "fault_hook", die)
    with pytest.raises(RuntimeError):
        store.commit(upserts=documents(5, 120, rng))
    monkeypatch.undo()
    assert hnsw(store) is not None and contents(store) == before
    assert store.fetch("SELECT added_rows FROM {meta}") == [(50,)]
    store.close()


def test_compaction_builds_the_index_a_bulk_write_dropped(postgres_uri: str, tmp_path: Path) -> None:
    """The knowledge base's compaction (after every write) sees the store's own ``optimize_due``."""
    store = open_store(postgres_uri, tmp_path / "store", dimension=DIM, create=True)
    compaction = Compaction(store, KBSettings(), tmp_path, "kb")
    store.commit(upserts=documents(0, 120, np.random.default_rng(5)))
    assert compaction.due()
    compaction.after_write()
    assert hnsw(store) is not None and not compaction.due()
    store.close()


def test_stores_from_before_keep_their_index_and_get_the_bookkeeping(
    postgres_uri: str, tmp_path: Path
) -> None:
    """A store written before (PostgreSQL's own index name, no bookkeeping columns) opens, keeps its
    index for small writes and drops it, found by type, for a bulk one."""
    path = tmp_path / "store"
    store = open_store(postgres_uri, path, dimension=DIM, create=True)
    rng = np.random.default_rng(6)
    store.commit(upserts=documents(0, 5, rng))
    old_name = f'"{store.location.prefix}_chunks_vector_idx"'
    alter(store, f"ALTER INDEX {{hnsw}} RENAME TO {old_name}")
    alter(store, "ALTER TABLE {meta} DROP COLUMN indexed_rows, DROP COLUMN added_rows")
    store.close()
    again = open_store(postgres_uri, path, dimension=DIM)
    again.commit(upserts=documents(5, 5, rng))
    assert hnsw(again) == old_name
    assert again.fetch("SELECT indexed_rows, added_rows FROM {meta}") == [(50, 50)]
    again.commit(upserts=documents(10, 100, rng))
    assert hnsw(again) is None
    again.close()
