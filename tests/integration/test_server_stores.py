"""Server-store specifics: superseded versions are purged after the retention time, and snapshots
keep working while they are retained; URIs carry the index options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finesift.store.registry import normalize_store_uri, open_store, store_kind
from finesift.types import Chunk, DocumentInfo

DIM = 8


def write(doc_id: str, texts: list[str], rng: np.random.Generator):
    from finesift.store.base import DocumentWrite

    chunks = [Chunk(doc_id, i, t, 0, len(t), None, f"/{doc_id}.md", "md") for i, t in enumerate(texts)]
    v = rng.standard_normal((len(texts), DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    info = DocumentInfo(doc_id, f"/{doc_id}.md", "md", "h", "p", len(texts), 10)
    return DocumentWrite(info, chunks, v, [t.split() for t in texts])


def physical_rows(store) -> int:
    if type(store).__name__ == "MilvusStore":
        return len(store.query_all("chunks", "gen >= 0", ["pk"]))
    postings = int(store.fetch("SELECT count(*) FROM {post}")[0][0])
    chunks = int(store.fetch("SELECT count(*) FROM {chunks}")[0][0])
    assert postings == chunks, "one BM25 posting per (term, chunk) here: purged with the chunks"
    return chunks


@pytest.mark.service
@pytest.mark.parametrize("service", ["milvus_uri", "postgres_uri"])
def test_superseded_versions_are_kept_for_readers_then_purged(request, tmp_path: Path, service: str) -> None:
    uri = request.getfixturevalue(service)
    store = open_store(uri, tmp_path / "store", dimension=DIM, create=True)
    rng = np.random.default_rng(0)
    store.commit(upserts=[write("a", ["one", "two", "three"], rng)])
    held = store.snapshot()
    store.commit(upserts=[write("a", ["uno"], rng)])
    assert [c.text for c in held.chunks("a")] == ["one", "two", "three"], "retained for the held snapshot"
    assert physical_rows(store) == 4
    store.retention_s = 0.0
    store.commit(upserts=[write("b", ["bee"], rng)])
    assert physical_rows(store) == 2, "the replaced version is gone from the store"
    snap = store.snapshot()
    assert [c.text for c in snap.chunks("a")] == ["uno"] and snap.count_chunks() == 2
    store.commit(deletes=["a"])
    store.commit(deletes=["b"])
    assert physical_rows(store) == 0 and store.snapshot().documents() == []
    store.close()


@pytest.mark.service
def test_milvus_lite_commits_land_in_flushed_segments(
    milvus_dir: Path, milvus_uri: str, tmp_path: Path
) -> None:
    """Milvus Lite 3.2.2 scans unflushed rows in Python on every search (about 1 s a query at 10,000
    chunks of dimension 1024, which looked like a hang on a loaded machine): a commit flushes them."""
    pq = pytest.importorskip("pyarrow.parquet")
    store = open_store(milvus_uri, tmp_path / "store", dimension=DIM, create=True)
    assert store.lite
    store.commit(upserts=[write("a", ["one", "two", "three"], np.random.default_rng(0))])
    segments = (milvus_dir / "data" / "collections" / store.name("chunks")).rglob("data_*.parquet")
    assert sum(pq.read_metadata(f).num_rows for f in segments) == 3, "the chunks are in a segment"
    assert [h.chunk.text for h in store.snapshot().lexical_search(["two"], k=3)] == ["two"]
    store.close()


def test_store_uris_map_to_backends() -> None:
    assert store_kind("lancedb") == "lancedb"
    assert store_kind("./kb.db") == store_kind("http://h:19530") == store_kind("milvus://h") == "milvus"
    assert store_kind("postgresql://u@h/db") == store_kind("postgres://h/db") == "pgvector"
    assert normalize_store_uri("kb.db?index=ivf").endswith("/kb.db?index=ivf")
    assert normalize_store_uri("kb.db").startswith("/")
