"""The Milvus store: Milvus Lite (a local ``.db``), ``milvus-lite server``, or Milvus standalone/cluster.

Milvus has no multi-row transactions, so a commit is made atomic by *generations* (see
:mod:`finesift.store.generations`): three collections per KB, ``<prefix>_chunks`` (one row per chunk
version) and ``<prefix>_docs`` (one row per document version), both with ``gen`` and ``superseded``,
and ``<prefix>_commits`` (one row per commit). A commit with sequence number ``S``

1. rolls back what a crashed writer left (rows with ``gen > V``; ``superseded > V`` reset to 0),
2. inserts the new chunk and document rows with ``gen = S`` (invisible: readers filter ``gen <= V``),
3. marks the replaced versions' rows ``superseded = S`` (still visible to readers at ``V``),
4. inserts the commit row ``S``: the single-row insert that makes all of it visible at once,
5. purges rows superseded more than ``retention_s`` ago.

A reader pins ``V`` (the highest commit row) and filters every query with the constant-size
expression ``gen <= V and (superseded == 0 or superseded > V)``, so a document's chunks appear all
together or not at all, and a snapshot does not change while held (up to ``retention_s``). Marking
rewrites the replaced chunk rows whole (Milvus Lite has no partial update): an update costs about
twice the writes of a first insert.

Lexical search is BM25 inside Milvus (see :mod:`finesift.store.milvus_schema`), filtered like dense
search, so no client reads all chunk rows. Collections without ``lex`` (created before) fall back
to an in-memory index of every chunk, with a warning. On Milvus Lite each commit ends with a flush, so
that searches run on indexed segments (see :mod:`finesift.store.milvus_client`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finesift.errors import InvalidRequest, MissingDependency, StoreError
from finesift.store import generations as g
from finesift.store.base import DocumentWrite, StoreSnapshot, validate_write
from finesift.store.lexical_text import joined_terms
from finesift.store.milvus_client import connect_client, is_lite, quiet_client_logs, seal
from finesift.store.milvus_schema import (
    LEX_FIELD,
    SPARSE_FIELD,
    create_collections,
    in_list,
    parse_uri,
    visible_at,
)
from finesift.store.milvus_snapshot import HIT_FIELDS, MAX_TOPK, Hits, MilvusSnapshot
from finesift.types import DocumentInfo

log = logging.getLogger(__name__)
PAGE = 4_000
#: Every field of each collection (upserts rewrite whole rows).
FIELDS = {
    "chunks": ["pk", "doc_key", "doc_id", "gen", "superseded", "idx", "source", "file_type", "text", "start",
               "end", "page", "terms", "vector"],
    "docs": ["doc_key", "doc_id", "gen", "superseded", "info", "v"],
}  # fmt: skip


def _no_fault(step: str) -> None:
    """The default :data:`fault_hook`: nothing happens."""


#: Test seam: called with a step name at each point of the commit path.
fault_hook: Callable[[str], None] = _no_fault


class MilvusStore:
    """A :class:`~finesift.store.base.VectorStore` in three Milvus collections (see the module doc)."""

    def __init__(
        self, location: g.Location, *, token: str | None = None, retention_s: float = g.DEFAULT_RETENTION_S
    ) -> None:
        self.location = location
        self.retention_s = retention_s
        uri, self.options = parse_uri(location.uri)
        quiet_client_logs()
        try:
            self._client = connect_client(uri, token)
        except Exception as exc:
            raise StoreError(f"cannot connect to Milvus at {location.uri}: {exc}; is it running?") from exc
        self._snapshot: MilvusSnapshot | None = None
        self._dimension, self.bm25_in_store = self._read_schema()
        self.lite = self._call("version", is_lite, self._client)
        self.fields = {"chunks": FIELDS["chunks"] + [LEX_FIELD] * self.bm25_in_store, "docs": FIELDS["docs"]}
        if not self.bm25_in_store:
            log.warning(
                "Milvus store %s predates store-side BM25: lexical search loads every chunk into this "
                "process; run `finesift kb migrate <kb> --to <uri>` to move it to collections that search it",
                location.prefix,
            )
        for part in ("chunks", "docs", "commits"):  # a new process finds them released
            self._call("load", self._client.load_collection, self.name(part))

    def name(self, part: str) -> str:
        return f"{self.location.prefix}_{part}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise StoreError(f"Milvus {what} failed on {self.location.uri}: {exc}") from exc

    def _read_schema(self) -> tuple[int, bool]:
        """The vector dimension, and whether the chunks collection has the BM25 function."""
        if not self._client.has_collection(self.name("chunks")):
            raise StoreError(f"Milvus at {self.location.uri} has no collection {self.name('chunks')}")
        info = self._call("describe", self._client.describe_collection, self.name("chunks"))
        field = next(f for f in info["fields"] if f["name"] == "vector")
        names = {f["name"] for f in info["fields"]}
        return int(field["params"]["dim"]), {LEX_FIELD, SPARSE_FIELD} <= names

    # ---- reads ---------------------------------------------------------------------------------

    def query_all(self, part: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row of ``part`` matching ``expr`` (through a query iterator: no 16,384-row cap)."""
        out: list[dict[str, Any]] = []
        iterator = self._call(
            "query", self._client.query_iterator, self.name(part), batch_size=PAGE, filter=expr,
            output_fields=fields,
        )  # fmt: skip
        try:
            while page := self._call("query", iterator.next):
                out.extend(dict(r) for r in page)
        finally:
            iterator.close()
        return out

    def vector_search(self, vector: np.ndarray, k: int, expr: str) -> Hits:
        params = {
            "ef": max(k, int(self.options.get("ef", 128))),
            "nprobe": int(self.options.get("nprobe", 32)),
        }
        result = self._call(
            "search", self._client.search, self.name("chunks"),
            data=[np.asarray(vector, np.float32).tolist()],
            anns_field="vector", limit=k, filter=expr, output_fields=HIT_FIELDS,
            search_params={"metric_type": "IP", "params": params}, consistency_level="Strong",
        )  # fmt: skip
        return [(dict(hit["entity"]), float(hit["distance"])) for hit in result[0]]

    def bm25_search(self, text: str, k: int, expr: str) -> Hits:
        """The best BM25 matches of the query ``text`` (escaped terms) among rows matching ``expr``.

        Asks for more than ``k`` so that ties at the cut are broken like every store's (by chunk id).
        """
        result = self._call(
            "BM25 search", self._client.search, self.name("chunks"), data=[text], anns_field=SPARSE_FIELD,
            limit=min(MAX_TOPK, 2 * k + 16), filter=expr, output_fields=HIT_FIELDS,
            search_params={"metric_type": "BM25"}, consistency_level="Strong",
        )  # fmt: skip
        # Milvus gives the score; Milvus Lite 3.2.2 its negation (its internal distance).
        return [(dict(hit["entity"]), abs(float(hit["distance"]))) for hit in result[0]]

    def committed(self) -> int:
        rows = self.query_all("commits", "seq >= 0", ["seq"])
        return max((int(r["seq"]) for r in rows), default=0)

    def doc_versions(self, version: int) -> list[tuple[DocumentInfo, int]]:
        """The document versions (info, gen) live at ``version``: the newest per document.

        At ``version`` one row per document is visible. Marking a replaced row is an upsert, which
        Milvus applies as a delete plus an insert; a read that sees the old row beside the new
        version's (seen once, under load, on Milvus Lite) must still pin the newest, which is the
        one every commit up to ``version`` left live.
        """
        newest: dict[str, tuple[DocumentInfo, int]] = {}
        for r in self.query_all("docs", visible_at(version), ["gen", "info"]):
            info, gen = g.info_from_json(r["info"]), int(r["gen"])
            if info.doc_id not in newest or gen > newest[info.doc_id][1]:
                newest[info.doc_id] = (info, gen)
        return list(newest.values())

    def snapshot(self) -> StoreSnapshot:
        version = self.committed()
        if self._snapshot is None or self._snapshot.version != version:
            self._snapshot = MilvusSnapshot(self, version)
        return self._snapshot

    # ---- writes --------------------------------------------------------------------------------

    def commit(self, *, upserts: Sequence[DocumentWrite] = (), deletes: Sequence[str] = ()) -> int:
        """Atomically replace ``upserts`` and delete ``deletes`` (see the module doc); the new seq."""
        for write in upserts:
            validate_write(write, self._dimension)
        ids = sorted({w.info.doc_id for w in upserts} | set(deletes))
        g.check_doc_ids(ids)
        version = self.committed()
        if not ids:
            return version
        self._rollback(version)
        seq = version + 1
        rows = [row for w in upserts for row in self._chunk_rows(w, seq)]
        for start in range(0, len(rows), 2000):
            self._call("insert", self._client.insert, self.name("chunks"), rows[start : start + 2000])
            fault_hook("chunks_added")
        replaced = f"superseded == 0 and gen <= {version} and {in_list('doc_id', ids)}"
        self._mark("chunks", replaced, seq)
        self._mark("docs", replaced, seq)
        fault_hook("documents_superseded")
        fresh = [self._doc_row(w.info, seq) for w in upserts]
        if fresh:
            self._call("insert", self._client.insert, self.name("docs"), fresh)
        fault_hook("documents_written")
        self._call("commit", self._client.insert, self.name("commits"), [
            {"seq": seq, "at": time.time(), "v": [0.0, 0.0]}
        ])  # fmt: skip
        self._purge(seq)
        if self.lite:
            seal(self._client, [self.name(p) for p in ("chunks", "docs", "commits")])
        return seq

    def _chunk_rows(self, write: DocumentWrite, gen: int) -> list[dict[str, Any]]:
        rows = g.chunk_rows(write, gen)
        if self.bm25_in_store:
            for row, terms in zip(rows, write.terms, strict=True):
                row[LEX_FIELD] = joined_terms(terms)
        return rows

    def _mark(self, part: str, expr: str, superseded: int) -> int:
        """Set ``superseded`` on the rows of ``part`` matching ``expr`` (whole-row upserts); how many."""
        fields = [f for f in self.fields[part] if f != "superseded"]
        rows = self.query_all(part, expr, fields)
        for start in range(0, len(rows), 1000):
            batch = [{**r, "superseded": superseded} for r in rows[start : start + 1000]]
            self._call("upsert", self._client.upsert, self.name(part), batch)
        return len(rows)

    @staticmethod
    def _doc_row(info: DocumentInfo, gen: int) -> dict[str, Any]:
        key = f"{info.doc_id}@{gen}"
        return {
            "doc_key": key,
            "doc_id": info.doc_id,
            "gen": gen,
            "superseded": 0,
            "info": g.info_json(info),
            "v": [0.0, 0.0],
        }

    def _rollback(self, version: int) -> None:
        """Undo what a writer that stopped before its commit row left behind."""
        for part in ("chunks", "docs"):
            if self._mark(part, f"superseded > {version}", 0):
                log.warning("Milvus store %s: rolled back an unfinished commit", self.location.prefix)
        self._call("delete", self._client.delete, self.name("docs"), filter=f"gen > {version}")
        self._call("delete", self._client.delete, self.name("chunks"), filter=f"gen > {version}")

    def _purge(self, seq: int) -> None:
        """Delete versions superseded by commits older than the retention time."""
        cutoff = time.time() - self.retention_s
        commits = self.query_all("commits", "seq >= 0", ["seq", "at"])
        old = [int(r["seq"]) for r in commits if float(r["at"]) <= cutoff]
        if not old:
            return
        horizon = max(old)
        for part in ("chunks", "docs"):
            dead = f"superseded > 0 and superseded <= {horizon}"
            self._call("purge", self._client.delete, self.name(part), filter=dead)
        self._call("purge", self._client.delete, self.name("commits"), filter=f"seq < {horizon}")

    def close(self) -> None:
        # The client stays open for snapshots taken before close (as on LanceDB); it closes when
        # the last of them is garbage-collected.
        self._snapshot = None

    def destroy(self) -> None:
        """Drop the KB's collections (used when the KB is dropped)."""
        for part in ("chunks", "docs", "commits"):
            self._call("drop", self._client.drop_collection, self.name(part))


def open_store(
    path: Path, *, dimension: int, create: bool = False, uri: str = "", token: str | None = None
) -> MilvusStore:
    """Registry factory: create (recording ``uri`` in ``path``) or open the KB's Milvus collections."""
    if create:
        location = g.Location(uri, g.new_prefix(path))
        connect, options = parse_uri(uri)
        if not connect.startswith(("http://", "https://", "tcp://", "unix:")):
            Path(connect).parent.mkdir(parents=True, exist_ok=True)
        quiet_client_logs()
        try:
            client = connect_client(connect, token)
            create_collections(client, location.prefix, dimension, options)
            client.close()
        except (InvalidRequest, MissingDependency):
            raise
        except Exception as exc:
            raise StoreError(
                f"cannot create the Milvus collections at {uri}: {exc}; check that Milvus runs there"
            ) from exc
        g.write_location(path, location)
    store = MilvusStore(g.read_location(path), token=token)
    if store.dimension != dimension:
        raise StoreError(f"the Milvus store holds {store.dimension}-dim vectors, expected {dimension}")
    return store
