"""BM25 runs inside the server stores (Milvus, PostgreSQL): no chunk rows are loaded into the client,
snapshots keep their own lexical view, and stores written before keep working."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finesift.lexical import BM25Index, tokenize
from finesift.store import generations
from finesift.store.base import DocumentWrite
from finesift.store.registry import open_store
from finesift.types import Chunk, DocumentInfo

pytestmark = pytest.mark.service
SERVERS = ["milvus_uri", "postgres_uri"]
DIM = 8
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def document(
    doc_id: str, n: int, rng: np.random.Generator, *, texts: list[str] | None = None
) -> DocumentWrite:
    texts = texts or [" ".join(rng.choice(WORDS, 5)) + f" {doc_id}x{i}" for i in range(n)]
    source = f"/docs/{doc_id}.md"
    chunks = [Chunk(doc_id, i, t, 0, len(t), None, source, "md") for i, t in enumerate(texts)]
    vectors = rng.standard_normal((len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    info = DocumentInfo(doc_id, source, "md", f"h-{doc_id}", "p", len(chunks), 10 * len(chunks))
    return DocumentWrite(info, chunks, vectors, [tokenize(t) for t in texts])


class NoClientIndex(Exception):
    """Raised when a store builds an in-memory BM25 index of its chunks."""


def refuse(*args: object, **kwargs: object) -> None:
    raise NoClientIndex("the store loaded its chunks into a client-side BM25 index")


@pytest.fixture(params=SERVERS)
def uri(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


def test_lexical_search_builds_no_client_side_index(uri: str, tmp_path: Path, monkeypatch) -> None:
    store = open_store(uri, tmp_path / "store", dimension=DIM, create=True)
    rng = np.random.default_rng(0)
    docs = [document(f"d{i}", 4, rng) for i in range(5)]
    docs.append(document("cjk", 2, rng, texts=["数据库索引优化 getUserName", "分布式事务 retry_policy"]))
    store.commit(upserts=docs)
    monkeypatch.setattr(generations, "Lexical", refuse)
    monkeypatch.setattr(BM25Index, "from_codes", refuse)
    snap = store.snapshot()
    assert [h.chunk.chunk_id for h in snap.lexical_search(tokenize("数据"), k=3)] == ["cjk:0"]
    assert [h.chunk.chunk_id for h in snap.lexical_search(tokenize("user"), k=3)] == ["cjk:0"]
    assert [h.chunk.chunk_id for h in snap.lexical_search(tokenize("policy"), k=3)] == ["cjk:1"]
    assert [h.chunk.chunk_id for h in snap.lexical_search(["d3x1"], k=3)] == ["d3:1"]
    store.close()


def test_lexical_search_follows_updates_deletes_and_snapshots(uri: str, tmp_path: Path) -> None:
    store = open_store(uri, tmp_path / "store", dimension=DIM, create=True)
    rng = np.random.default_rng(1)
    store.commit(
        upserts=[
            document("a", 2, rng, texts=["oldword alpha", "beta"]),
            document("b", 1, rng, texts=["gamma"]),
        ]
    )
    before = store.snapshot()
    store.commit(upserts=[document("a", 1, rng, texts=["newword alpha"])])
    after = store.snapshot()
    assert [h.chunk.text for h in before.lexical_search(["oldword"], k=5)] == ["oldword alpha"]
    assert after.lexical_search(["oldword"], k=5) == []
    assert [h.chunk.text for h in after.lexical_search(["newword"], k=5)] == ["newword alpha"]
    assert [h.chunk.text for h in before.lexical_search(["alpha"], k=5)] == ["oldword alpha"]
    store.commit(deletes=["a"])
    assert store.snapshot().lexical_search(["newword", "alpha"], k=5) == []
    assert [h.chunk.text for h in after.lexical_search(["newword"], k=5)] == ["newword alpha"]
    store.close()


#: Earlier pgvector layouts: the terms as a GIN-indexed array (no postings table), or as JSON text.
GIN_LAYOUT = [
    "DROP TABLE {post}",
    "DROP INDEX {docs_superseded}",
    "CREATE INDEX {gin} ON {chunks} USING gin (terms)",
]
JSON_LAYOUT = [
    *GIN_LAYOUT,
    "DROP INDEX {gin}",
    "ALTER TABLE {chunks} ADD COLUMN terms_json text",
    "UPDATE {chunks} SET terms_json = array_to_json(terms)::text",
    "ALTER TABLE {chunks} DROP COLUMN terms",
    "ALTER TABLE {chunks} RENAME COLUMN terms_json TO terms",
    "ALTER TABLE {log} DROP COLUMN n_chunks, DROP COLUMN n_terms",
]


@pytest.mark.parametrize("old_layout", [GIN_LAYOUT, JSON_LAYOUT], ids=["gin-array", "json"])
def test_pgvector_tables_of_earlier_layouts_are_migrated_on_open(
    postgres_uri: str, tmp_path: Path, old_layout: list[str]
) -> None:
    """A store written before its BM25 postings table is converted in the server when opened."""
    path = tmp_path / "store"
    store = open_store(postgres_uri, path, dimension=DIM, create=True)
    rng = np.random.default_rng(2)
    docs = [document(f"d{i}", 5, rng) for i in range(4)]
    store.commit(upserts=docs)
    store.close()
    execute(postgres_uri, path, old_layout)
    again = open_store(postgres_uri, path, dimension=DIM)
    chunks = [c for d in docs for c in d.chunks]
    reference = BM25Index([c.chunk_id for c in chunks], [c.text for c in chunks])
    got = again.snapshot().lexical_search(tokenize("alpha gamma"), k=5)
    assert [h.score for h in got] == pytest.approx([s for _, s in reference.search("alpha gamma", 5)])
    again.commit(upserts=[document("d9", 2, rng, texts=["zzz one", "zzz two"])])
    assert [h.chunk.doc_id for h in again.snapshot().lexical_search(["zzz"], k=5)] == ["d9", "d9"]
    assert again.snapshot().export(["d1"])[0].terms == list(docs[1].terms)
    again.close()


def execute(uri: str, path: Path, statements: list[str], params: list[Any] | None = None) -> list[Any]:
    """Run ``statements`` on the pgvector store at ``path`` (table names filled in); the last one's rows."""
    import psycopg

    from finesift.store import pgvector

    rows: list[Any] = []
    conninfo = pgvector.parse_uri(uri)[0]
    with psycopg.connect(conninfo, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        for statement in statements:
            cur = conn.execute(pgvector.render(generations.read_location(path).prefix, statement), params)
            rows = cur.fetchall() if cur.description else []
    return rows


def plan_rows(node: dict[str, Any], table: str) -> int:
    """Rows that the plan ``node`` and its children read from ``table``."""
    own = int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
    read = own if node.get("Relation Name") == table else 0
    return read + sum(plan_rows(child, table) for child in node.get("Plans", []))


def test_pgvector_bm25_reads_the_chunk_rows_of_the_top_k_only(postgres_uri: str, tmp_path: Path) -> None:
    """BM25 scores from the postings; the chunk table is read for the ``k`` hits, not every match."""
    from finesift.store import pg_lexical, pgvector

    path = tmp_path / "store"
    store = open_store(postgres_uri, path, dimension=DIM, create=True)
    rng = np.random.default_rng(4)
    store.commit(upserts=[document(f"d{i}", 10, rng) for i in range(10)])
    snap = store.snapshot()
    columns = ", ".join(f"c.{c.strip()}" for c in pgvector.CHUNK_COLS.split(","))
    sql = pg_lexical.score_sql(snap.version, columns, "")
    terms = ["alpha", "beta"]
    explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + sql
    (plan,) = execute(postgres_uri, path, [explain], [terms, terms, 100, 6.0, 3])[0]
    chunks_table = generations.read_location(path).prefix + "_chunks"
    assert plan_rows(plan[0]["Plan"], chunks_table) == 3, "only the 3 hits' chunk rows are read"
    assert len(snap.lexical_search(terms, k=3)) == 3
    store.close()


def test_milvus_collections_without_bm25_fall_back_with_a_warning(
    milvus_uri: str, tmp_path: Path, monkeypatch, caplog
) -> None:
    """Collections created before the BM25 function (no ``lex``/``sparse``) still search, in memory."""
    from finesift.store import milvus_schema

    create = milvus_schema._create

    def old_create(client, name, columns, vector_index, analyzer=None):  # type: ignore[no-untyped-def]
        kept = [c for c in columns if c[0] not in (milvus_schema.LEX_FIELD, milvus_schema.SPARSE_FIELD)]
        create(client, name, kept, vector_index)

    monkeypatch.setattr(milvus_schema, "_create", old_create)
    with caplog.at_level(logging.WARNING, logger="finesift.store.milvus"):
        store = open_store(milvus_uri, tmp_path / "store", dimension=DIM, create=True)
    assert not store.bm25_in_store
    assert "predates store-side BM25" in caplog.text
    rng = np.random.default_rng(3)
    store.commit(upserts=[document("d1", 3, rng), document("d2", 2, rng, texts=["rareword", "x"])])
    store.commit(upserts=[document("d2", 1, rng, texts=["rareword again"])])
    hits = store.snapshot().lexical_search(["rareword"], k=5)
    assert [h.chunk.text for h in hits] == ["rareword again"]
    store.close()
