"""The VectorStore conformance suite: every store implementation must pass it unchanged.

Adding a store adds one entry to ``FACTORIES``: ``create(path, dimension, uri)`` and
``reopen(path, dimension, uri)``, where ``uri`` comes from the session fixture named in ``SERVICES``
(a server on loopback, started once per session) or is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from finesift.errors import InvalidRequest
from finesift.retrieval.lexical import BM25Index, tokenize
from finesift.store.base import DocumentWrite, Filters, StoreSnapshot, VectorStore
from finesift.store.registry import open_store
from finesift.types import Chunk, DocumentInfo

pytest.importorskip("lancedb")
DIM = 16
Factory = Callable[[Path, int, str], VectorStore]
FACTORIES: dict[str, tuple[Factory, Factory]] = {
    "lancedb": (
        lambda path, dim, uri: open_store("lancedb", path, dimension=dim, create=True),
        lambda path, dim, uri: open_store("lancedb", path, dimension=dim),
    ),
    "milvus": (
        lambda path, dim, uri: open_store(uri, path, dimension=dim, create=True),
        lambda path, dim, uri: open_store(uri, path, dimension=dim),
    ),
    "pgvector": (
        lambda path, dim, uri: open_store(uri, path, dimension=dim, create=True),
        lambda path, dim, uri: open_store(uri, path, dimension=dim),
    ),
}
#: The session fixture that starts each server store's service (marked ``service``).
SERVICES = {"milvus": "milvus_uri", "pgvector": "postgres_uri"}
PARAMS = [pytest.param(n, marks=[pytest.mark.service] if n in SERVICES else []) for n in sorted(FACTORIES)]
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "数据库",
    "索引",
    "查询",
    "优化",
]


@pytest.fixture(params=PARAMS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[VectorStore, Callable[[], VectorStore]]:
    create, reopen = FACTORIES[request.param]
    uri = request.getfixturevalue(SERVICES[request.param]) if request.param in SERVICES else ""
    store = create(tmp_path / "store", DIM, uri)
    yield store, lambda: reopen(tmp_path / "store", DIM, uri)
    store.close()


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def document(
    doc_id: str,
    n: int,
    rng: np.random.Generator,
    *,
    source: str | None = None,
    file_type: str = "md",
    texts: list[str] | None = None,
) -> DocumentWrite:
    source = source or f"/docs/{doc_id}.{file_type}"
    texts = texts or [" ".join(rng.choice(WORDS, 6)) + f" {doc_id}x{i}" for i in range(n)]
    chunks = [
        Chunk(doc_id, i, t, i * 100, i * 100 + len(t), None, source, file_type) for i, t in enumerate(texts)
    ]
    info = DocumentInfo(doc_id, source, file_type, f"h-{doc_id}", "p", len(chunks), 100 * len(chunks))
    return DocumentWrite(info, chunks, unit(rng, len(chunks)), [tokenize(t) for t in texts])


def all_ids(snap: StoreSnapshot) -> set[str]:
    return {c.chunk_id for d in snap.documents() for c in snap.chunks(d.doc_id)}


def test_empty_store(stores) -> None:
    store, _ = stores
    snap = store.snapshot()
    assert snap.documents() == [] and snap.count_chunks() == 0
    assert snap.search(unit(np.random.default_rng(0), 1)[0], k=5) == []
    assert snap.lexical_search(["alpha"], k=5) == []


def test_upsert_twice_keeps_one_copy(stores) -> None:
    store, _ = stores
    rng = np.random.default_rng(1)
    doc = document("d1", 3, rng)
    store.commit(upserts=[doc])
    store.commit(upserts=[doc])
    snap = store.snapshot()
    assert [d.doc_id for d in snap.documents()] == ["d1"] and snap.count_chunks() == 3


def test_replacement_swaps_all_chunks(stores) -> None:
    store, _ = stores
    rng = np.random.default_rng(2)
    store.commit(upserts=[document("d1", 5, rng)])
    before = store.snapshot()
    store.commit(upserts=[document("d1", 2, rng, texts=["new one", "new two"])])
    after = store.snapshot()
    assert [c.text for c in after.chunks("d1")] == ["new one", "new two"]
    assert after.documents()[0].chunks == 2
    assert len(before.chunks("d1")) == 5, "an older snapshot must not change"
    assert after.version > before.version


def test_deleted_documents_never_return(stores) -> None:
    store, _ = stores
    rng = np.random.default_rng(3)
    docs = [document(f"d{i}", 4, rng) for i in range(5)]
    store.commit(upserts=docs)
    store.commit(deletes=["d2", "d4"])
    snap = store.snapshot()
    assert {d.doc_id for d in snap.documents()} == {"d0", "d1", "d3"}
    for q in unit(rng, 10):
        assert all(h.chunk.doc_id not in ("d2", "d4") for h in snap.search(q, k=20))
    assert all(h.chunk.doc_id not in ("d2", "d4") for h in snap.lexical_search(["d2x1", "alpha"], k=50))


def test_dense_search_is_exact_sorted_and_bounded(stores) -> None:
    store, _ = stores
    rng = np.random.default_rng(4)
    docs = [document(f"d{i:02d}", 10, rng) for i in range(20)]
    store.commit(upserts=docs)
    vectors = np.concatenate([d.vectors for d in docs])
    ids = [c.chunk_id for d in docs for c in d.chunks]
    snap = store.snapshot()
    for q in unit(rng, 5):
        hits = snap.search(q, k=10)
        assert len(hits) == 10
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        exact = np.argsort(-(vectors @ q))[:10]
        assert {h.chunk.chunk_id for h in hits} == {ids[i] for i in exact}
        np.testing.assert_allclose(scores, np.sort(vectors @ q)[::-1][:10], atol=1e-5)


def test_filters_apply_before_top_k(stores) -> None:
    store, _ = stores
    rng = np.random.default_rng(5)
    docs = [document(f"a{i}", 5, rng, source=f"/kb/a/{i}.md") for i in range(4)]
    docs += [document(f"b{i}", 5, rng, source=f"/kb/b/{i}.pdf", file_type="pdf") for i in range(4)]
    docs += [document("q", 1, rng, source="/kb/it's/x.md")]
    store.commit(upserts=docs)
    snap = store.snapshot()
    q = unit(rng, 1)[0]
    only_a = snap.search(q, k=7, filters=Filters(source_prefix="/kb/a/"))
    assert len(only_a) == 7 and all(h.chunk.source.startswith("/kb/a/") for h in only_a)
    pdf = snap.search(q, k=50, filters=Filters(file_types=("pdf",)))
    assert len(pdf) == 20 and all(h.chunk.file_type == "pdf" for h in pdf)
    quoted = snap.search(q, k=5, filters=Filters(source_prefix="/kb/it's/"))
    assert [h.chunk.doc_id for h in quoted] == ["q"]
    lexical = snap.lexical_search(["alpha", "beta", "gamma"], k=50, filters=Filters(file_types=("pdf",)))
    assert lexical and all(h.chunk.file_type == "pdf" for h in lexical)


def test_lexical_search_matches_bm25_over_texts(stores) -> None:
    store, _ = stores
    rng = np.random.default_rng(6)
    docs = [document(f"d{i}", 6, rng) for i in range(6)]
    store.commit(upserts=docs)
    chunks = [c for d in docs for c in d.chunks]
    reference = BM25Index([c.chunk_id for c in chunks], [c.text for c in chunks])
    snap = store.snapshot()
    for query in ["数据库 优化", "alpha kappa", "d3x2"]:
        got = [(h.chunk.chunk_id, round(h.score, 6)) for h in snap.lexical_search(tokenize(query), k=8)]
        want = [(cid, round(s, 6)) for cid, s in reference.search(query, 8)]
        assert got == want


def test_invalid_vectors_are_refused_and_nothing_is_written(stores) -> None:
    store, _ = stores
    rng = np.random.default_rng(7)
    good = document("ok", 2, rng)
    bad_nan = document("nan", 2, rng)
    bad_nan.vectors[0, 0] = np.nan
    bad_norm = document("norm", 2, rng)
    bad_norm.vectors[1] *= 2
    wrong_dim = DocumentWrite(good.info, good.chunks, good.vectors[:, :8], good.terms)
    for bad in (bad_nan, bad_norm, wrong_dim):
        with pytest.raises(InvalidRequest):
            store.commit(upserts=[good, bad])
    assert store.snapshot().documents() == []


def test_reopen_shows_the_last_commit(stores) -> None:
    store, reopen = stores
    rng = np.random.default_rng(8)
    store.commit(upserts=[document("d1", 3, rng), document("d2", 2, rng)])
    store.commit(deletes=["d1"])
    before = store.snapshot()
    store.close()
    again = reopen()
    snap = again.snapshot()
    assert [d.doc_id for d in snap.documents()] == ["d2"]
    assert all_ids(snap) == all_ids(before) == {"d2:0", "d2:1"}
    assert again.dimension == DIM
    again.close()
