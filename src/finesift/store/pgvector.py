"""The pgvector store: PostgreSQL with the ``vector`` extension, through psycopg.

Three tables per KB: ``<prefix>_chunks``, ``<prefix>_docs`` (one row per chunk / document
*version*, tagged ``gen`` and ``superseded`` as in :mod:`finesift.store.generations`) and
``<prefix>_meta`` (the committed sequence number). A commit is one PostgreSQL transaction that
locks the meta row, marks the replaced versions superseded, inserts the new ones and bumps the
sequence number: all or nothing, durable on COMMIT, one writer at a time. Readers pin the sequence
number ``V`` and see versions with ``gen <= V`` not superseded at ``V``, so a snapshot stays frozen
without holding a transaction open; superseded versions are purged ``retention_s`` after they were
replaced. Dense search uses an HNSW (default) or IVFFlat index with iterative scans, so metadata
filters apply before the top-k; a bulk write drops the HNSW index and compaction builds it again
(:mod:`finesift.store.pg_vector_index`), exact search in between. Lexical search is BM25 computed
by PostgreSQL over a postings table written with the chunks (:mod:`finesift.store.pg_lexical`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import numpy as np

from finesift.errors import MissingDependency, StoreError
from finesift.store import generations as g
from finesift.store import pg_lexical as pl
from finesift.store import pg_vector_index as pv
from finesift.store.base import DocumentWrite, Filters, ScoredChunk, StoreSnapshot, validate_write
from finesift.store.pg_schema import ddl, render
from finesift.types import Chunk, DocumentInfo

log = logging.getLogger(__name__)
CHUNK_COLS = "doc_id, idx, text, start_char AS start, end_char AS end, page, source, file_type"
#: The chunk columns a commit writes (binary COPY), and their types.
COPY_COLS = "doc_id, gen, idx, source, file_type, text, start_char, end_char, page, terms, vector"
COPY_TYPES = ["text", "int8", "int4", "text", "text", "text", "int8", "int8", "int4", "text[]", "vector"]


def _no_fault(step: str) -> None:
    """The default :data:`fault_hook`: nothing happens."""


#: Test seam: called with a step name at each point of the commit path (inside the transaction).
fault_hook: Callable[[str], None] = _no_fault


def _psycopg() -> Any:
    try:
        import pgvector.psycopg  # noqa: F401 - imported here so that a missing package names the extra
        import psycopg
    except ImportError as exc:
        raise MissingDependency(
            getattr(exc, "name", None) or "psycopg", "pgvector", "needed by the pgvector store"
        ) from exc
    return psycopg


def parse_uri(uri: str) -> tuple[str, dict[str, str]]:
    """``(libpq conninfo, options)``; options: index, m, ef_construction, lists, ef_search, probes,
    maintenance_work_mem_mb (for building the HNSW index)."""
    parts = urlsplit(uri)
    ours = {"index", "m", "ef_construction", "lists", "ef_search", "probes", "maintenance_work_mem_mb"}
    query = parse_qsl(parts.query)
    options = {k: v for k, v in query if k in ours}
    rest = "&".join(f"{k}={v}" for k, v in query if k not in ours)
    scheme = "postgresql" if parts.scheme in ("pgvector", "postgres") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, "")), options


class PgSnapshot:
    """A read view of a :class:`PgVectorStore` pinned to commit ``version``."""

    def __init__(self, store: PgVectorStore, version: int) -> None:
        self._store, self._version = store, version
        self._visible = f"gen <= {version} AND (superseded = 0 OR superseded > {version})"
        rows = store.fetch(f"SELECT info FROM {{docs}} WHERE {self._visible}")
        self._docs = {d.doc_id: d for d in (g.info_from_json(r[0]) for r in rows)}
        self._bm25_stats: tuple[int, float] | None = None

    @property
    def version(self) -> int:
        return self._version

    def documents(self) -> list[DocumentInfo]:
        return sorted(self._docs.values(), key=lambda d: (d.source, d.doc_id))

    def count_chunks(self) -> int:
        return sum(d.chunks for d in self._docs.values())

    def _chunks(self, where: str, params: Sequence[Any] = ()) -> list[Chunk]:
        sql = f"SELECT {CHUNK_COLS} FROM {{chunks}} WHERE {self._visible} AND {where}"
        return [g.chunk_from_row(r) for r in self._store.fetch(sql, params, rows_as_dict=True)]

    def chunks(self, doc_id: str) -> list[Chunk]:
        return sorted(self._chunks("doc_id = %s", [doc_id]), key=lambda c: c.index)

    def search(self, vector: np.ndarray, *, k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        if k < 1 or not self._docs:
            return []
        where, params = _filter_sql(filters)
        sql = (
            f"SELECT {CHUNK_COLS}, -(vector <#> %s) AS score FROM {{chunks}} "
            f"WHERE {self._visible}{where} ORDER BY vector <#> %s LIMIT %s"
        )
        q = np.asarray(vector, np.float32)
        rows = self._store.fetch(sql, [q, *params, q, k], rows_as_dict=True, search_k=k)
        return g.sorted_hits([ScoredChunk(g.chunk_from_row(r), float(r["score"])) for r in rows], k)

    def lexical_search(
        self, terms: Sequence[str], *, k: int, filters: Filters | None = None
    ) -> list[ScoredChunk]:
        if not terms or k < 1 or not self._docs:
            return []
        n, avgdl = self._stats()
        where, params = _filter_sql(filters)
        columns = ", ".join(f"c.{c.strip()}" for c in CHUNK_COLS.split(","))
        sql = pl.score_sql(self._version, columns, where)
        query = list(terms)
        rows = self._store.fetch(sql, [query, query, n, avgdl, *params, k], rows_as_dict=True)
        return [ScoredChunk(g.chunk_from_row(r), float(r["score"])) for r in rows]

    def _stats(self) -> tuple[int, float]:
        """BM25's chunk count and average chunk length (in terms) at this snapshot."""
        if self._bm25_stats is None:
            rows = self._store.fetch("SELECT n_chunks, n_terms FROM {log} WHERE seq = %s", [self._version])
            if not rows or rows[0][0] is None:  # a commit older than the log: count the rows
                rows = self._store.fetch(pl.TOTALS.format(chunks="{chunks}", visible=self._visible))
            n, total = int(rows[0][0]), int(rows[0][1])
            self._bm25_stats = n, (total / n if n and total else 1.0)
        return self._bm25_stats

    def export(self, doc_ids: Sequence[str]) -> list[DocumentWrite]:
        known = [d for d in doc_ids if d in self._docs]
        if not known:
            return []
        sql = f"SELECT {CHUNK_COLS}, terms, vector FROM {{chunks}} WHERE {self._visible} AND doc_id = ANY(%s)"
        rows = self._store.fetch(sql, [known], rows_as_dict=True)
        for row in rows:
            row["terms"] = json.dumps(row["terms"], ensure_ascii=False)
        return g.export_writes([self._docs[d] for d in known], rows, self._store.dimension)


def _filter_sql(filters: Filters | None) -> tuple[str, list[Any]]:
    if filters is None or filters.empty:
        return "", []
    parts: list[str] = []
    params: list[Any] = []
    if filters.source_prefix:
        parts.append("starts_with(source, %s)")
        params.append(filters.source_prefix)
    if filters.file_types:
        parts.append("file_type = ANY(%s)")
        params.append(list(filters.file_types))
    if filters.doc_ids:
        parts.append("doc_id = ANY(%s)")
        params.append(list(filters.doc_ids))
    return "".join(f" AND {p}" for p in parts), params


class PgVectorStore:
    """A :class:`~finesift.store.base.VectorStore` in PostgreSQL tables (see the module doc)."""

    def __init__(self, location: g.Location, *, retention_s: float = g.DEFAULT_RETENTION_S) -> None:
        self.location = location
        self.retention_s = retention_s
        self.conninfo, self.options = parse_uri(location.uri)
        self._local = threading.local()
        self._open: list[Any] = []
        self._open_lock = threading.Lock()
        self._closed = False
        self._snapshot: PgSnapshot | None = None
        rows = self.fetch("SELECT dim FROM {meta}")
        if not rows:
            raise StoreError(f"the pgvector store {location.prefix} at {location.uri} has no meta row")
        self._dimension = int(rows[0][0])
        self._migrate()

    def _migrate(self) -> None:
        """Give tables written before the postings table their term arrays and postings (in the server),
        and the meta row its index bookkeeping."""
        if tuple(self.fetch(pl.LAYOUT)[0]) == ("text[]", True) and self.fetch(pv.HAS_COLUMNS)[0][0]:
            return
        psycopg = _psycopg()
        try:
            with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
                cur.execute(self.sql("SELECT seq FROM {meta} FOR UPDATE"))  # one migrating process at a time
                cur.execute(self.sql(pv.COLUMNS))
                if pl.migrate(cur, self.sql):
                    log.warning("pgvector store %s: built its BM25 postings for store-side search (once)",
                                self.location.prefix)  # fmt: skip
        except psycopg.Error as exc:
            raise StoreError(f"cannot upgrade the pgvector tables at {self.location.uri}: {exc}") from exc

    @property
    def dimension(self) -> int:
        return self._dimension

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """This thread's connection (autocommit; writes open explicit transactions).

        After :meth:`close`, snapshots taken before still read, through a short-lived connection.
        """
        if self._closed:
            with connect(self.conninfo, self.location.uri) as conn:
                yield conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = connect(self.conninfo, self.location.uri)
            self._local.conn = conn
            with self._open_lock:
                self._open.append(conn)
        yield conn

    def sql(self, text: str) -> str:
        return render(self.location.prefix, text)

    def fetch(
        self, text: str, params: Sequence[Any] = (), *, rows_as_dict: bool = False, search_k: int = 0
    ) -> list[Any]:
        psycopg = _psycopg()
        factory = psycopg.rows.dict_row if rows_as_dict else psycopg.rows.tuple_row
        try:
            with self.connection() as conn, conn.transaction(), conn.cursor(row_factory=factory) as cur:
                if search_k:
                    ef = max(search_k, int(self.options.get("ef_search", 100)))
                    cur.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                    cur.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                    cur.execute(f"SET LOCAL ivfflat.probes = {int(self.options.get('probes', 10))}")
                    cur.execute("SET LOCAL ivfflat.iterative_scan = relaxed_order")
                cur.execute(self.sql(text), list(params))
                return list(cur.fetchall())
        except psycopg.Error as exc:
            raise StoreError(f"pgvector query failed on {self.location.uri}: {exc}") from exc

    def committed(self) -> int:
        return int(self.fetch("SELECT seq FROM {meta}")[0][0])

    def snapshot(self) -> StoreSnapshot:
        version = self.committed()
        if self._snapshot is None or self._snapshot.version != version:
            self._snapshot = PgSnapshot(self, version)
        return self._snapshot

    def commit(self, *, upserts: Sequence[DocumentWrite] = (), deletes: Sequence[str] = ()) -> int:
        """Replace ``upserts`` and delete ``deletes`` in one PostgreSQL transaction; the new seq."""
        for write in upserts:
            validate_write(write, self._dimension)
        ids = sorted({w.info.doc_id for w in upserts} | set(deletes))
        g.check_doc_ids(ids)
        if not ids:
            return self.committed()
        psycopg = _psycopg()
        try:
            with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
                cur.execute(self.sql("SELECT seq FROM {meta} FOR UPDATE"))
                seq = int(cur.fetchone()[0]) + 1
                if pv.wanted(self.options):
                    pv.before_insert(cur, self.sql, sum(len(w.chunks) for w in upserts))
                cur.execute(self.sql("SELECT n_chunks, n_terms FROM {log} WHERE seq = %s"), [seq - 1])
                before = cur.fetchone()
                cur.execute(self.sql(pl.SUPERSEDE), [seq, ids])
                gone = cur.fetchone()
                cur.execute(
                    self.sql("UPDATE {docs} SET superseded = %s WHERE superseded = 0 AND doc_id = ANY(%s)"),
                    [seq, ids],
                )
                self._insert(cur, upserts, seq)
                pv.build_ivf(cur, self.sql, self.options)
                cur.execute(self.sql("UPDATE {meta} SET seq = %s, committed_at = %s"), [seq, time.time()])
                self._purge(cur, seq, self._totals(cur, before, gone, upserts))
        except psycopg.Error as exc:
            raise StoreError(
                f"pgvector commit failed on {self.location.uri}: {exc}; nothing was written"
            ) from exc
        return seq

    def _totals(self, cur: Any, before: Any, gone: Any, upserts: Sequence[DocumentWrite]) -> tuple[int, int]:
        """Live chunks and their total term count after this commit (BM25's N and length sum)."""
        if before is None or before[0] is None:
            cur.execute(self.sql(pl.LIVE_TOTALS))
            chunks, terms = cur.fetchone()
            return int(chunks), int(terms)
        added = sum(len(w.chunks) for w in upserts), sum(len(t) for w in upserts for t in w.terms)
        return int(before[0]) - int(gone[0]) + added[0], int(before[1]) - int(gone[1]) + added[1]

    def _insert(self, cur: Any, upserts: Sequence[DocumentWrite], seq: int) -> None:
        rows = [r for w in upserts for r in g.chunk_rows(w, seq)]
        terms = [list(t) for w in upserts for t in w.terms]
        keys = ("doc_id", "gen", "idx", "source", "file_type", "text", "start", "end", "page")
        with cur.copy(self.sql(f"COPY {{chunks}} ({COPY_COLS}) FROM STDIN (FORMAT BINARY)")) as copy:
            copy.set_types(COPY_TYPES)  # binary: no float formatting here, no parsing in the server
            for r, t in zip(rows, terms, strict=True):
                copy.write_row([*(r[k] for k in keys), t, r["vector"]])
        cur.execute(self.sql(pl.FILL_COMMIT), [[w.info.doc_id for w in upserts], seq])
        fault_hook("chunks_added")
        cur.executemany(
            self.sql("INSERT INTO {docs} (doc_id, gen, info) VALUES (%s, %s, %s)"),
            [(w.info.doc_id, seq, g.info_json(w.info)) for w in upserts],
        )
        fault_hook("documents_written")

    def _purge(self, cur: Any, seq: int, totals: tuple[int, int]) -> None:
        """Log this commit (time, BM25 totals); delete versions superseded more than ``retention_s`` ago."""
        now = time.time()
        cur.execute(
            self.sql("INSERT INTO {log} (seq, at, n_chunks, n_terms) VALUES (%s, %s, %s, %s)"),
            [seq, now, *totals],
        )
        cur.execute(self.sql("SELECT max(seq) FROM {log} WHERE at <= %s"), [now - self.retention_s])
        horizon = cur.fetchone()[0]
        if horizon is None:
            return
        cur.execute(self.sql(pl.PURGE), [horizon])
        for table in ("{chunks}", "{docs}"):
            cur.execute(self.sql(f"DELETE FROM {table} WHERE superseded > 0 AND superseded <= %s"), [horizon])
        cur.execute(self.sql("DELETE FROM {log} WHERE seq < %s"), [horizon])

    def optimize_due(self) -> bool:
        """Whether compaction has work: the HNSW index was dropped for a bulk write."""
        return pv.wanted(self.options) and not self.fetch(pv.FIND)

    def optimize(self, *, keep: Any = None) -> None:
        """Build the HNSW index dropped for a bulk write (one transaction; commits wait for it)."""
        if not pv.wanted(self.options):
            return
        psycopg = _psycopg()
        try:
            with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
                cur.execute(self.sql("SELECT seq FROM {meta} FOR UPDATE"))  # one writer at a time
                if pv.build(cur, self.sql, self.options):
                    log.info("pgvector store %s: built its HNSW index", self.location.prefix)
        except psycopg.Error as exc:
            raise StoreError(f"building the HNSW index failed on {self.location.uri}: {exc}") from exc

    def close(self) -> None:
        self._snapshot = None
        self._closed = True
        with self._open_lock:
            for conn in self._open:
                conn.close()
            self._open.clear()

    def destroy(self) -> None:
        """Drop the KB's tables (used when the KB is dropped)."""
        with self.connection() as conn, conn.transaction():
            for table in ("{chunks}", "{docs}", "{meta}", "{log}", "{post}"):
                conn.execute(self.sql(f"DROP TABLE IF EXISTS {table}"))


def connect(conninfo: str, uri: str) -> Any:
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(conninfo, autocommit=True)
        conn.execute("SET work_mem = '64MB'")  # BM25 sorts its terms' postings: ~700k fit in memory
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {uri}: {exc}".strip()) from exc
    import pgvector.psycopg

    try:
        pgvector.psycopg.register_vector(conn)
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"the vector extension is missing at {uri}; run CREATE EXTENSION vector") from exc
    return conn


def open_store(
    path: Path, *, dimension: int, create: bool = False, uri: str = "", token: str | None = None
) -> PgVectorStore:
    """Registry factory: create (recording ``uri`` in ``path``) or open the KB's pgvector tables."""
    if create:
        location = g.Location(uri, g.new_prefix(path))
        conninfo, options = parse_uri(uri)
        psycopg = _psycopg()
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
                for statement in ddl(dimension, options):
                    conn.execute(render(location.prefix, statement))
        except psycopg.Error as exc:
            raise StoreError(f"cannot create the pgvector tables at {uri}: {exc}".strip()) from exc
        g.write_location(path, location)
    store = PgVectorStore(g.read_location(path))
    if store.dimension != dimension:
        raise StoreError(f"the pgvector store holds {store.dimension}-dim vectors, expected {dimension}")
    return store
