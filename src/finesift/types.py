"""Plain data passed between ingest, store, retrieval and the knowledge base: frozen, no behaviour.

Offsets (``start``, ``end``) are character offsets into a document's extracted, normalised text
(Python ``str`` indices, end exclusive). Pages are 1-based and set only for paged formats (PDF).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """A loaded document: its extracted text and where each page starts (PDF only)."""

    source: str
    text: str
    file_type: str
    page_starts: tuple[int, ...] = ()
    title: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A contiguous span ``text == document.text[start:end]`` of one document."""

    doc_id: str
    index: int
    text: str
    start: int
    end: int
    page: int | None = None
    source: str = ""
    file_type: str = ""

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}:{self.index}"


@dataclass(frozen=True)
class DocumentInfo:
    """What the store records per document; ``content_hash`` + ``pipeline`` decide re-indexing."""

    doc_id: str
    source: str
    file_type: str
    content_hash: str
    pipeline: str
    chunks: int
    chars: int
    pages: int = 0
    size: int = 0
    indexed_at: str = ""


@dataclass(frozen=True)
class Hit:
    """One search result with its citation: the chunk's text and its offsets in the document."""

    doc_id: str
    source: str
    text: str
    score: float
    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True)
class Failure:
    """A source that could not be indexed, and why (one line)."""

    source: str
    reason: str
    #: Refused by a cap (``kb.max_*``, named in ``reason``), not for being unreadable or malformed.
    too_large: bool = False


@dataclass(frozen=True)
class IndexReport:
    """What one indexing run did. ``chunks_embedded`` counts texts sent to the embedder."""

    documents_added: int = 0
    documents_updated: int = 0
    documents_unchanged: int = 0
    documents_failed: int = 0
    documents_removed: int = 0
    chunks_embedded: int = 0
    failures: tuple[Failure, ...] = field(default_factory=tuple)
    #: Sources this run stored or found unchanged: the documents it touched that are in the KB now.
    stored: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, int]:
        """The machine-readable counts printed by ``finesift index --json``."""
        return {
            "documents_added": self.documents_added,
            "documents_updated": self.documents_updated,
            "documents_unchanged": self.documents_unchanged,
            "documents_failed": self.documents_failed,
            "documents_removed": self.documents_removed,
            "chunks_embedded": self.chunks_embedded,
        }
