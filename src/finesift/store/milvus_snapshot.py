"""A read view of a Milvus store pinned to one commit (see :mod:`finesift.store.milvus`).

Every query carries the constant-size visibility expression of the pinned commit, and every search hit
is also checked against the document version the snapshot pinned: marking a replaced row is an upsert
(a delete plus an insert) in Milvus, so a search beside a commit can see both versions for a moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from finesift.store import generations as g
from finesift.store.base import DocumentWrite, Filters, ScoredChunk
from finesift.store.lexical_text import joined_terms
from finesift.store.milvus_schema import filter_expr, in_list, quote, visible_at
from finesift.types import Chunk, DocumentInfo

CHUNK_FIELDS = ["doc_id", "idx", "text", "start", "end", "page", "source", "file_type"]
#: Search hits also carry their generation: a snapshot keeps only those of the versions it pinned.
HIT_FIELDS = [*CHUNK_FIELDS, "gen"]
#: The most hits one Milvus search returns (its topk limit).
MAX_TOPK = 16_384
#: Search hits as the store returns them: (row, score).
Hits = list[tuple[dict[str, Any], float]]


class MilvusReads(Protocol):
    """What a snapshot reads through: :class:`~finesift.store.milvus.MilvusStore`'s query methods."""

    @property
    def dimension(self) -> int: ...

    @property
    def bm25_in_store(self) -> bool: ...

    def doc_versions(self, version: int) -> list[tuple[DocumentInfo, int]]: ...

    def query_all(self, part: str, expr: str, fields: list[str]) -> list[dict[str, Any]]: ...

    def vector_search(self, vector: np.ndarray, k: int, expr: str) -> Hits: ...

    def bm25_search(self, text: str, k: int, expr: str) -> Hits: ...


class MilvusSnapshot:
    """A read view of a :class:`~finesift.store.milvus.MilvusStore` pinned to commit ``version``."""

    def __init__(self, store: MilvusReads, version: int) -> None:
        self._store, self._version = store, version
        self._docs = {info.doc_id: (info, gen) for info, gen in store.doc_versions(version)}
        self._lexical: g.Lexical | None = None

    @property
    def version(self) -> int:
        return self._version

    def _visible(self, extra: Sequence[str] = ()) -> str:
        parts = [visible_at(self._version), *extra]
        return " and ".join(f"({p})" for p in parts)

    def documents(self) -> list[DocumentInfo]:
        return sorted((i for i, _ in self._docs.values()), key=lambda d: (d.source, d.doc_id))

    def count_chunks(self) -> int:
        return sum(info.chunks for info, _ in self._docs.values())

    def chunks(self, doc_id: str) -> list[Chunk]:
        if doc_id not in self._docs:
            return []
        key = f"{doc_id}@{self._docs[doc_id][1]}"
        rows = self._store.query_all("chunks", f"doc_key == {quote(key)}", CHUNK_FIELDS)
        return sorted((g.chunk_from_row(r) for r in rows), key=lambda c: c.index)

    def search(self, vector: np.ndarray, *, k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        if k < 1 or not self._docs:
            return []
        expr = self._visible(filter_expr(filters))
        rows = self._pinned_top(lambda limit: self._store.vector_search(vector, limit, expr), k)
        hits = [ScoredChunk(g.chunk_from_row(r), score) for r, score in rows]
        if filters is not None:
            hits = [h for h in hits if filters.accepts(**_attrs(h.chunk))]
        return g.sorted_hits(hits, k)

    def lexical_search(
        self, terms: Sequence[str], *, k: int, filters: Filters | None = None
    ) -> list[ScoredChunk]:
        if not terms or k < 1 or not self._docs:
            return []
        if self._store.bm25_in_store:
            text, expr = joined_terms(terms), self._visible(filter_expr(filters))
            rows = self._pinned_top(lambda limit: self._store.bm25_search(text, limit, expr), k)
            hits = [ScoredChunk(g.chunk_from_row(r), score) for r, score in rows if score > 0]
            if filters is not None:
                hits = [h for h in hits if filters.accepts(**_attrs(h.chunk))]
            return g.sorted_hits(hits, k)
        return self._lexical_in_memory(terms, k, filters)

    def _pinned_top(self, fetch: Callable[[int], Hits], k: int) -> Hits:
        """``fetch(limit)``'s hits of pinned versions, asked again (twice at most) with room for the
        hits :meth:`_pinned` dropped, so that a search beside a commit still finds ``k`` when they exist."""
        limit = k
        for _ in range(3):
            rows = fetch(limit)
            kept = self._pinned(rows)
            dropped = len(rows) - len(kept)
            if len(kept) >= k or not dropped or len(rows) < limit or limit >= MAX_TOPK:
                break
            limit = min(MAX_TOPK, limit + 2 * dropped)
        return kept

    def _pinned(self, rows: Hits) -> Hits:
        """The hits from the document versions this snapshot pinned.

        The ``gen``/``superseded`` filter alone shows one version per document only if marking a
        replaced row is atomic; in Milvus it is an upsert (a delete plus an insert), so a search that
        runs beside a commit could also return the replaced version's chunks. Pinned versions cannot mix.
        """
        docs = self._docs
        return [(r, s) for r, s in rows if r["doc_id"] in docs and int(r["gen"]) == docs[r["doc_id"]][1]]

    def _lexical_in_memory(self, terms: Sequence[str], k: int, filters: Filters | None) -> list[ScoredChunk]:
        """BM25 over every visible chunk, loaded into this process (collections without ``lex``)."""
        if self._lexical is None:
            rows = self._store.query_all(
                "chunks", self._visible(), ["doc_id", "idx", "source", "file_type", "terms"]
            )
            self._lexical = g.Lexical(sorted(rows, key=lambda r: (r["doc_id"], int(r["idx"]))))
        top = self._lexical.top(terms, k, filters)
        if not top:
            return []
        keys = [f"{cid}@{self._docs[cid.rsplit(':', 1)[0]][1]}" for cid, _ in top]
        rows = self._store.query_all("chunks", in_list("pk", keys), CHUNK_FIELDS)
        by_id = {c.chunk_id: c for c in map(g.chunk_from_row, rows)}
        return [ScoredChunk(by_id[cid], score) for cid, score in top if cid in by_id]

    def export(self, doc_ids: Sequence[str]) -> list[DocumentWrite]:
        known = [d for d in doc_ids if d in self._docs]
        if not known:
            return []
        keys = [f"{d}@{self._docs[d][1]}" for d in known]
        rows = self._store.query_all("chunks", in_list("doc_key", keys), [*CHUNK_FIELDS, "terms", "vector"])
        return g.export_writes([self._docs[d][0] for d in known], rows, self._store.dimension)


def _attrs(chunk: Chunk) -> dict[str, str]:
    return {"source": chunk.source, "file_type": chunk.file_type, "doc_id": chunk.doc_id}
