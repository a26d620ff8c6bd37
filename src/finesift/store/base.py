"""The vector store contract: documents of chunks, replaced and deleted atomically, read in snapshots.

A store holds, per document, one :class:`DocumentInfo` and its chunks, each chunk with one
L2-normalised vector and its BM25 terms. Every implementation promises (and
``tests/contract/test_vector_store.py`` checks):

- ``commit`` is atomic: after it returns, all of its upserts and deletes are visible together and
  durable; after a crash at any point, either all of them are visible or none is. An upsert replaces
  the document's previous chunks entirely (no reader ever sees old and new chunks mixed).
- ``snapshot()`` is a consistent read view: it never changes while held, whatever writers do.
- Dense search returns at most ``k`` chunks, best first, exact on small data (recall 1 vs brute force);
  scores are cosine similarities. Lexical search is BM25 over the stored terms.
- Reopening a store (a new process) shows exactly the last committed state.
- Only one writer at a time; concurrency between processes is the caller's lock (the KB's lock file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from finesift.errors import InvalidRequest
from finesift.types import Chunk, DocumentInfo

#: How far from 1 a vector's L2 norm may be.
NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class DocumentWrite:
    """One document to store: its info, its chunks in order, one vector and one term list per chunk."""

    info: DocumentInfo
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    terms: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Filters:
    """Metadata filters: ``source`` starts with ``source_prefix``; ``file_types`` (extensions) if given."""

    source_prefix: str | None = None
    file_types: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.source_prefix or self.file_types or self.doc_ids)

    def accepts(self, *, source: str, file_type: str, doc_id: str) -> bool:
        """Whether a chunk with these attributes passes (the reference semantics for every store)."""
        return (
            (not self.source_prefix or source.startswith(self.source_prefix))
            and (not self.file_types or file_type in self.file_types)
            and (not self.doc_ids or doc_id in self.doc_ids)
        )


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk and its score (cosine similarity for dense, BM25 for lexical)."""

    chunk: Chunk
    score: float


@runtime_checkable
class StoreSnapshot(Protocol):
    """A consistent, immutable read view of a store."""

    @property
    def version(self) -> int:
        """The commit sequence number this view shows (0 for an empty store)."""
        ...

    def documents(self) -> list[DocumentInfo]:
        """Every stored document, sorted by source."""
        ...

    def count_chunks(self) -> int: ...

    def chunks(self, doc_id: str) -> list[Chunk]:
        """The document's chunks in order (empty when unknown)."""
        ...

    def search(self, vector: np.ndarray, *, k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        """The ``k`` chunks nearest to ``vector`` ((d,) float32, unit norm), best first."""
        ...

    def lexical_search(
        self, terms: Sequence[str], *, k: int, filters: Filters | None = None
    ) -> list[ScoredChunk]:
        """The ``k`` best BM25 matches for the query ``terms`` (positive scores only), best first."""
        ...

    def export(self, doc_ids: Sequence[str]) -> list[DocumentWrite]:
        """The stored documents ``doc_ids`` with chunks, vectors and terms, ready to commit elsewhere."""
        ...


@runtime_checkable
class VectorStore(Protocol):
    """Documents of chunks with vectors; atomic commits; snapshot reads."""

    @property
    def dimension(self) -> int: ...

    def commit(self, *, upserts: Sequence[DocumentWrite] = (), deletes: Sequence[str] = ()) -> int:
        """Atomically replace/insert ``upserts`` and remove the ``deletes`` doc ids; the new version."""
        ...

    def snapshot(self) -> StoreSnapshot:
        """The latest committed state, frozen."""
        ...

    def close(self) -> None: ...


def validate_write(write: DocumentWrite, dimension: int) -> None:
    """Refuse a document whose vectors are malformed, non-finite, not unit norm, or not one per chunk."""
    vectors = write.vectors
    name = write.info.source or write.info.doc_id
    n = len(write.chunks)
    if vectors.ndim != 2 or vectors.shape != (n, dimension) or len(write.terms) != n:
        raise InvalidRequest(
            f"{name}: expected {n} vectors of dimension {dimension} and {n} term lists, got vectors "
            f"{tuple(vectors.shape)} and {len(write.terms)} term lists"
        )
    if not np.all(np.isfinite(vectors)):
        raise InvalidRequest(f"{name}: vectors contain NaN or infinity; refusing to store them")
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    if n and np.max(np.abs(norms - 1.0)) > NORM_TOLERANCE:
        raise InvalidRequest(f"{name}: vectors must be L2-normalised (found a norm of {norms[0]:.4f})")
    for i, chunk in enumerate(write.chunks):
        if chunk.doc_id != write.info.doc_id or chunk.index != i:
            raise InvalidRequest(f"{name}: chunk {i} has doc_id/index {chunk.doc_id}/{chunk.index}")
    if write.info.chunks != n:
        raise InvalidRequest(f"{name}: the document info says {write.info.chunks} chunks, {n} given")
