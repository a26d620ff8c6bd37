"""The VectorStore conformance suite: every store implementation must pass it unchanged.

Adding a store adds one entry to ``FACTORIES``: ``create(path, dimension, uri)`` and
``reopen(path, dimension, uri)``, where ``uri`` comes from the session fixture named in ``SERVICES``
(a server on loopback, started once per session) or is empty.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from finesift.errors import InvalidRequest
from finesift.lexical import BM25Index, tokenize
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
def store_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stores(
    request: pytest.FixtureRequest, tmp_path: Path, store_name: str
) -> tuple[VectorStore, Callable[[], VectorStore]]:
    create, reopen = FACTORIES[store_name]
    uri = request.getfixturevalue(SERVICES[store_name]) if store_name in SERVICES else ""
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
        got = snap.lexical_search(tokenize(query), k=8)
        want = reference.search(query, 8)
        # The same formula everywhere (k1 = 1.2, b = 0.75, Lucene idf), but LanceDB and Milvus score in
        # float32 and PostgreSQL sums in its own order: scores agree to ~6 digits, and a near-tie at the
        # cut may keep another of the tied chunks. Each hit has its reference score; the scores are the top k.
        assert [h.score for h in got] == pytest.approx([s for _, s in want], rel=1e-5)
        exact = dict(zip([c.chunk_id for c in chunks], reference.scores(query), strict=True))
        assert [h.score for h in got] == pytest.approx([exact[h.chunk.chunk_id] for h in got], rel=1e-5)


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


class Died(Exception):
    """Stands for a writer killed in the middle of a commit."""


@pytest.mark.parametrize("step", ["chunks_added", "documents_written"])
def test_a_writer_dying_mid_commit_leaves_the_last_commit(stores, monkeypatch, step: str) -> None:
    store, reopen = stores
    module = importlib.import_module(type(store).__module__)
    rng = np.random.default_rng(9)
    store.commit(upserts=[document("d1", 3, rng, texts=["old a", "old b", "old c"]), document("d2", 2, rng)])
    before = {
        d.doc_id: [c.text for c in store.snapshot().chunks(d.doc_id)] for d in store.snapshot().documents()
    }

    def die(at: str) -> None:
        if at == step:
            raise Died(at)

    monkeypatch.setattr(module, "fault_hook", die)
    with pytest.raises(Died):
        store.commit(upserts=[document("d1", 2, rng, texts=["new a", "new b"])], deletes=["d2"])
    monkeypatch.undo()
    again = reopen()
    for view in (store.snapshot(), again.snapshot()):
        assert {d.doc_id: [c.text for c in view.chunks(d.doc_id)] for d in view.documents()} == before
        hits = view.search(unit(rng, 1)[0], k=20)
        assert sorted(h.chunk.text for h in hits if h.chunk.doc_id == "d1") == ["old a", "old b", "old c"]
        assert view.count_chunks() == 5
    again.close()
    store.commit(upserts=[document("d1", 2, rng, texts=["new a", "new b"])], deletes=["d2"])
    snap = store.snapshot()
    assert [c.text for c in snap.chunks("d1")] == ["new a", "new b"] and snap.count_chunks() == 2
    assert {h.chunk.text for h in snap.search(unit(rng, 1)[0], k=20)} == {"new a", "new b"}


def _texts_of(v: int) -> dict[str, list[str]]:
    """Version ``v`` of the four documents: their chunk texts (the count changes with the version)."""
    n = 2 + v % 3
    return {f"d{i}": [f"v{v} d{i} part {j}" for j in range(n)] for i in range(4)}


def _read_once(snap: StoreSnapshot, rng: np.random.Generator) -> tuple[int, int | None, list[str]]:
    """(snapshot version, the committed version its chunks show, what disagrees with that one version)."""
    seen = {info.doc_id: [c.text for c in snap.chunks(info.doc_id)] for info in snap.documents()}
    tags = {text.split()[0] for texts in seen.values() for text in texts}
    if len(tags) != 1:
        return snap.version, None, [f"snapshot {snap.version} mixes versions {sorted(tags)}"]
    v = int(tags.pop()[1:])
    expected, problems = _texts_of(v), []
    if seen != expected:
        problems.append(f"snapshot {snap.version}: chunks {seen} are not version {v}'s")
    infos = {info.doc_id: info.chunks for info in snap.documents()}
    if infos != {d: len(t) for d, t in expected.items()}:
        problems.append(f"snapshot {snap.version}: document chunk counts {infos} are not version {v}'s")
    total = sum(len(t) for t in expected.values())
    if snap.count_chunks() != total:
        problems.append(f"snapshot {snap.version}: count_chunks {snap.count_chunks()} != {total}")
    hits = {h.chunk.text for h in snap.search(unit(rng, 1)[0], k=50)}
    if hits != {t for texts in expected.values() for t in texts}:
        problems.append(f"snapshot {snap.version}: search found {len(hits)} chunks, not version {v}'s")
    return snap.version, v, problems


def test_concurrent_reads_during_writes_see_whole_versions(stores) -> None:
    """Every read, while a writer commits, sees exactly one committed version: the same chunk set, chunk
    counts, ``count_chunks`` and search results as that version, and the snapshot's version number is the
    one that commit returned. A reader that raises fails the test (its error is collected)."""
    store, _ = stores
    rng = np.random.default_rng(10)

    def writes(v: int) -> list[DocumentWrite]:
        return [document(d, len(t), rng, texts=t) for d, t in _texts_of(v).items()]

    committed = {0: store.commit(upserts=writes(0))}
    observed: list[tuple[int, int | None]] = []
    problems: list[str] = []
    done, lock = threading.Event(), threading.Lock()
    first_reads = [threading.Event() for _ in range(2)]

    def read(first: threading.Event) -> None:
        local = np.random.default_rng(threading.get_ident() % 1000)
        try:
            while True:  # at least one read, then until the writer is done
                version, v, found = _read_once(store.snapshot(), local)
                with lock:
                    observed.append((version, v))
                    problems.extend(found)
                first.set()
                if done.is_set():
                    return
        except Exception as exc:
            with lock:
                problems.append(f"reader failed: {exc!r}")
            first.set()

    readers = [threading.Thread(target=read, args=(e,)) for e in first_reads]
    for t in readers:
        t.start()
    try:
        for event in first_reads:
            assert event.wait(60), "a reader never finished its first read"
        for v in range(1, 7):
            committed[v] = store.commit(upserts=writes(v))
    finally:
        done.set()
        for t in readers:
            t.join(60)
    assert problems == []
    assert len(observed) >= len(readers)
    wrong = [(version, v) for version, v in observed if committed.get(v) != version]
    assert not wrong, f"snapshot versions that do not match the commit that wrote them: {wrong[:5]}"
    assert _read_once(store.snapshot(), rng)[1:] == (6, [])


#: The URI options that choose each server store's index type (ANN parameters at their defaults).
INDEX_OPTIONS = {
    "milvus": {"hnsw": "index=hnsw", "ivf": "index=ivf&nlist=100&nprobe=60"},
    "pgvector": {"hnsw": "index=hnsw", "ivf": "index=ivf&lists=100&probes=60"},
}


#: LanceDB searches exactly (no index option): it must find every exact neighbour. The server stores are
#: checked with each ANN index, and the index they built is checked too, so that an exact fallback cannot
#: pass for an index.
RECALL_CASES = [
    pytest.param("lancedb", "exact"),
    *[pytest.param(s, i, marks=pytest.mark.service) for s in sorted(INDEX_OPTIONS) for i in ("hnsw", "ivf")],
]
#: The index type each server store reports for the chunks' vectors.
BUILT_INDEX = {"milvus": {"hnsw": "HNSW", "ivf": "IVF_FLAT"}, "pgvector": {"hnsw": "hnsw", "ivf": "ivfflat"}}


def built_vector_index(store: VectorStore, store_name: str) -> str:
    """The type of the ANN index the store built on its chunks' vectors ("" when there is none)."""
    if store_name == "pgvector":
        table = store.sql("{chunks}").strip('"')  # type: ignore[attr-defined]
        rows = store.fetch("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])  # type: ignore[attr-defined]
        kinds = [k for k in ("hnsw", "ivfflat") if any(f"USING {k} " in str(r[0]) for r in rows)]
        return kinds[0] if kinds else ""
    client, collection = store._client, store.name("chunks")  # type: ignore[attr-defined]
    for name in client.list_indexes(collection):
        info = client.describe_index(collection, name)
        if info.get("field_name") == "vector":
            return str(info.get("index_type", ""))
    return ""


@pytest.mark.slow
@pytest.mark.parametrize(("store_name", "index"), RECALL_CASES)
def test_recall_at_10_against_exact_search_on_20k_vectors(
    request, tmp_path: Path, store_name: str, index: str
) -> None:
    uri = request.getfixturevalue(SERVICES[store_name]) if store_name in SERVICES else ""
    dim, rng = 32, np.random.default_rng(11)
    if uri:
        uri += ("&" if "?" in uri else "?") + INDEX_OPTIONS[store_name][index]
    store = FACTORIES[store_name][0](tmp_path / "store", dim, uri)
    vectors = rng.standard_normal((20_000, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start in range(0, 20_000, 2_000):
        docs = []
        for d in range(start, start + 2_000, 100):
            chunks = [Chunk(f"d{d}", i, f"t{d + i}", 0, 1, None, f"/{d}.md", "md") for i in range(100)]
            info = DocumentInfo(f"d{d}", f"/{d}.md", "md", "h", "p", 100, 100)
            docs.append(DocumentWrite(info, chunks, vectors[d : d + 100], [["t"]] * 100))
        store.commit(upserts=docs)
    if store_name == "pgvector":  # the bulk commits dropped its HNSW index; compaction builds it again
        store.optimize()  # type: ignore[attr-defined]
    snap = store.snapshot()
    if store_name in BUILT_INDEX:
        assert built_vector_index(store, store_name) == BUILT_INDEX[store_name][index]
    queries = rng.standard_normal((50, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    found = 0
    for q in queries:
        exact = {f"d{(i // 100) * 100}:{i % 100}" for i in np.argsort(-(vectors @ q))[:10]}
        found += len(exact & {h.chunk.chunk_id for h in snap.search(q, k=10)})
    store.close()
    print(f"{store_name} {index}: recall@10 = {found / 500:.3f}")
    assert found / 500 >= (1.0 if index == "exact" else 0.95)


def test_export_gives_back_what_was_stored(stores) -> None:
    store, _ = stores
    rng = np.random.default_rng(12)
    docs = [document(f"d{i}", 3, rng) for i in range(3)]
    docs.append(document("p", 1, rng, file_type="pdf", texts=["数据库 索引"]))
    store.commit(upserts=docs)
    got = store.snapshot().export(["p", "d1", "missing"])
    assert [w.info for w in got] == [docs[3].info, docs[1].info]
    for want, have in zip([docs[3], docs[1]], got, strict=True):
        assert list(have.chunks) == list(want.chunks)
        assert [list(t) for t in have.terms] == [list(t) for t in want.terms]
        np.testing.assert_allclose(have.vectors, want.vectors, atol=1e-6)
    q = unit(rng, 1)[0]
    before = [(h.chunk.chunk_id, round(h.score, 5)) for h in store.snapshot().search(q, k=5)]
    store.commit(upserts=got)
    assert [(h.chunk.chunk_id, round(h.score, 5)) for h in store.snapshot().search(q, k=5)] == before
