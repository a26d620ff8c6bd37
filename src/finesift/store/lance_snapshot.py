"""A read view of a :class:`~finesift.store.lancedb.LanceStore` pinned to one commit.

Dense and lexical search both run inside Lance, metadata filters applied before the top-k: dense
search exact on small tables and through the ANN index past its threshold, BM25 through Lance's
inverted index over finesift's own terms (see :mod:`finesift.store.lance_index`). No search reads
all rows into the process. A store written before the token column existed, opened read-only,
falls back to an in-memory BM25 built from its terms until its next write or compaction adds it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from finesift.errors import InvalidRequest, StoreError
from finesift.lexical import BM25Index
from finesift.store.base import DocumentWrite, Filters, ScoredChunk
from finesift.store.lance_index import LEX, LanceIndexOptions, has_lex, has_vector_index, tune
from finesift.types import Chunk, DocumentInfo

log = logging.getLogger(__name__)
CHUNK_COLUMNS = ["doc_id", "idx", "text", "start", "end", "page", "source", "file_type"]
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:\-]+")


def sql_str(value: str) -> str:
    """A SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Sequence[str]) -> str:
    """``('a', 'b')`` for identifiers made of safe characters only."""
    for value in values:
        if not _SAFE_ID.fullmatch(value):
            raise InvalidRequest(f"invalid document id {value!r}: use letters, digits and _.:-")
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def where_clause(filters: Filters | None) -> str | None:
    """The Lance filter expression for ``filters`` (``None`` when nothing is filtered)."""
    if filters is None or filters.empty:
        return None
    parts = []
    if filters.source_prefix:
        parts.append(f"starts_with(source, {sql_str(filters.source_prefix)})")
    if filters.file_types:
        parts.append("file_type IN (" + ", ".join(sql_str(t) for t in filters.file_types) + ")")
    if filters.doc_ids:
        parts.append(f"doc_id IN {sql_list(list(filters.doc_ids))}")
    return " AND ".join(parts)


def chunk_of(row: dict[str, Any]) -> Chunk:
    page = row["page"]
    return Chunk(
        row["doc_id"],
        int(row["idx"]),
        row["text"],
        int(row["start"]),
        int(row["end"]),
        None if page is None else int(page),
        row["source"],
        row["file_type"],
    )


class _LegacyLexical:
    """In-memory BM25 over every chunk of a store without the token column (the pre-index fallback)."""

    def __init__(self, chunks: Any) -> None:
        import pyarrow.compute as pc

        table = (
            chunks.search()
            .select(["chunk_id", "doc_id", "idx", "source", "file_type", "terms"])
            .limit(None)
            .to_arrow()
            # BM25 ties break by (doc_id, idx) in every store, whatever the storage order
            .sort_by([("doc_id", "ascending"), ("idx", "ascending")])
        )
        terms = table.column("terms").combine_chunks()
        encoded = pc.dictionary_encode(terms.flatten()) if len(terms) else None
        vocab = encoded.dictionary.to_pylist() if encoded is not None else []
        codes = (
            encoded.indices.to_numpy(zero_copy_only=False) if encoded is not None else np.zeros(0, np.int64)
        )
        lengths = (
            pc.list_value_length(terms).fill_null(0).to_numpy(zero_copy_only=False) if len(terms) else []
        )
        self.chunk_ids = table.column("chunk_id").to_pylist()
        self.doc_ids = table.column("doc_id").to_pylist()
        self.sources = table.column("source").to_pylist()
        self.file_types = table.column("file_type").to_pylist()
        self.index = BM25Index.from_codes(
            self.chunk_ids, vocab=vocab, codes=codes, lengths=np.asarray(lengths)
        )

    def top(self, terms: Sequence[str], k: int, filters: Filters | None) -> list[tuple[str, float]]:
        scores = self.index.scores_for_terms(terms)
        if filters is not None and not filters.empty:
            mask = np.array(
                [
                    filters.accepts(source=s, file_type=t, doc_id=d)
                    for s, t, d in zip(self.sources, self.file_types, self.doc_ids, strict=True)
                ],
                bool,
            )
            scores = np.where(mask, scores, 0.0)
        hits = np.flatnonzero(scores > 0)
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return [(self.chunk_ids[i], float(scores[i])) for i in order]


class LanceSnapshot:
    """Implements :class:`~finesift.store.base.StoreSnapshot` over two checked-out Lance tables."""

    def __init__(self, seq: int, documents: Any, chunks: Any, options: LanceIndexOptions) -> None:
        self._seq = seq
        self._documents = documents
        self._chunks = chunks
        self._options = options
        self._ann: bool | None = None
        self._legacy: _LegacyLexical | None = None
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        return self._seq

    def documents(self) -> list[DocumentInfo]:
        rows = self._documents.to_arrow().to_pylist()
        return sorted((DocumentInfo(**row) for row in rows), key=lambda d: (d.source, d.doc_id))

    def count_chunks(self) -> int:
        return int(self._chunks.count_rows())

    def chunks(self, doc_id: str) -> list[Chunk]:
        where = f"doc_id IN {sql_list([doc_id])}"
        rows = self._chunks.search().where(where).select(CHUNK_COLUMNS).limit(None).to_arrow().to_pylist()
        return sorted((chunk_of(r) for r in rows), key=lambda c: c.index)

    def search(self, vector: np.ndarray, *, k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        query = self._chunks.search(np.asarray(vector, dtype=np.float32)).distance_type("dot")
        if self._ann is None:
            self._ann = has_vector_index(self._chunks)
        if self._ann:
            query = tune(query, self._options, k)
        where = where_clause(filters)
        if where:
            query = query.where(where, prefilter=True)
        try:
            rows = query.select([*CHUNK_COLUMNS, "_distance"]).limit(k).to_arrow().to_pylist()
        except (OSError, ValueError, RuntimeError) as exc:
            raise StoreError(f"dense search failed: {exc}") from exc
        hits = [ScoredChunk(chunk_of(r), 1.0 - float(r["_distance"])) for r in rows]
        return sorted(hits, key=lambda h: (-h.score, h.chunk.doc_id, h.chunk.index))

    def lexical_search(
        self, terms: Sequence[str], *, k: int, filters: Filters | None = None
    ) -> list[ScoredChunk]:
        terms = [t for t in terms if t and not t.isspace()]
        if not terms or k < 1:
            return []
        if not has_lex(self._chunks):
            return self._legacy_search(terms, k, filters)
        from lancedb.query import MatchQuery

        # every term is one whitespace-free token, so the index's whitespace tokenizer splits them back
        match = MatchQuery(" ".join(terms), LEX)  # type: ignore[call-arg]  # lancedb types its defaults as required
        query = self._chunks.search(match, query_type="fts")
        where = where_clause(filters)
        if where:
            query = query.where(where, prefilter=True)
        try:  # a margin beyond k so that ties at the cut break by (doc_id, index) as in every store
            rows = query.select([*CHUNK_COLUMNS, "_score"]).limit(k + 16).to_arrow().to_pylist()
        except (OSError, ValueError, RuntimeError) as exc:
            raise StoreError(f"full-text search failed: {exc}") from exc
        hits = [ScoredChunk(chunk_of(r), float(r["_score"])) for r in rows if r["_score"] > 0]
        return sorted(hits, key=lambda h: (-h.score, h.chunk.doc_id, h.chunk.index))[:k]

    def _legacy_search(self, terms: Sequence[str], k: int, filters: Filters | None) -> list[ScoredChunk]:
        with self._lock:  # build once per snapshot, even with concurrent searches
            if self._legacy is None:
                log.warning(
                    "this LanceDB store predates the full-text index: BM25 runs in memory until the "
                    "next write or `finesift kb optimize` adds the index"
                )
                self._legacy = _LegacyLexical(self._chunks)
        top = self._legacy.top(terms, k, filters)
        if not top:
            return []
        where = f"chunk_id IN {sql_list([cid for cid, _ in top])}"
        rows = self._chunks.search().where(where).select(["chunk_id", *CHUNK_COLUMNS]).limit(None).to_arrow()
        by_id = {r["chunk_id"]: chunk_of(r) for r in rows.to_pylist()}
        return [ScoredChunk(by_id[cid], score) for cid, score in top if cid in by_id]

    def export(self, doc_ids: Sequence[str]) -> list[DocumentWrite]:
        if not doc_ids:
            return []
        where = f"doc_id IN {sql_list(list(doc_ids))}"
        infos = {
            r["doc_id"]: DocumentInfo(**r)
            for r in self._documents.search().where(where).limit(None).to_arrow().to_pylist()
        }
        rows = self._chunks.search().where(where).select([*CHUNK_COLUMNS, "terms", "vector"]).limit(None)
        by_doc: dict[str, list[dict[str, Any]]] = {}
        for row in rows.to_arrow().to_pylist():
            by_doc.setdefault(row["doc_id"], []).append(row)
        out = []
        for doc_id in doc_ids:
            if doc_id not in infos:
                continue
            part = sorted(by_doc.get(doc_id, []), key=lambda r: int(r["idx"]))
            vectors = np.asarray([r["vector"] for r in part], np.float32).reshape(len(part), -1)
            out.append(
                DocumentWrite(
                    infos[doc_id], [chunk_of(r) for r in part], vectors, [list(r["terms"]) for r in part]
                )
            )
        return out
