"""Request and response bodies of the knowledge-base routes (``/v1/kbs``); also their OpenAPI schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from finesift.retrieval.pipeline import MAX_QUERY_CHARS
from finesift.server.schemas import Text, _Request
from finesift.settings import SearchSettings
from finesift.types import DocumentInfo

KBName = Field(
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    description="1-64 letters, digits, `_`, `.`, `-`, starting with a letter or digit.",
    examples=["handbook"],
)


class CreateKB(_Request):
    """A new knowledge base with the server's embedding model (and reranker unless `rerank` is false)."""

    name: str = KBName
    dim: int | None = Field(None, ge=1, description="Matryoshka dimension (default: the model's full one).")
    rerank: bool = Field(True, description="Record the server's reranker with the KB (searches rerank).")
    chunk_size: int | None = Field(None, ge=32, le=8192, description="Tokens per chunk.")
    chunk_overlap: int | None = Field(None, ge=0, le=4096, description="Overlap tokens between chunks.")


class KBSummary(BaseModel):
    name: str


class KBList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KBSummary]


class KBInfo(BaseModel):
    """What ``finesift kb info --json`` prints, minus the server's file path."""

    name: str
    store: str
    embedding_model: str
    reranker_model: str | None
    dim: int
    instruction: str
    chunk_size: int
    chunk_overlap: int
    created_at: str
    documents: int
    chunks: int
    version: Any = None
    fingerprint: dict[str, Any]
    document_list: list[DocumentInfo]


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentInfo]


class FailureOut(BaseModel):
    source: str
    reason: str
    too_large: bool = Field(False, description="refused by a cap that `reason` names (kb.max_chunks, ...)")


class IndexResult(BaseModel):
    """The counts of ``finesift index --json``, the failures, and the ids of the documents touched."""

    documents_added: int
    documents_updated: int
    documents_unchanged: int
    documents_failed: int
    documents_removed: int
    chunks_embedded: int
    failures: list[FailureOut]
    documents: list[KBDocumentRef] = Field(default_factory=list)


class KBDocumentRef(BaseModel):
    doc_id: str
    source: str


class IndexPaths(_Request):
    """Files or folders on the server, inside its configured index roots."""

    paths: list[Text] = Field(
        min_length=1,
        max_length=1000,
        description="Absolute paths, or paths relative to the first index root; `..` is refused.",
    )
    prune: bool = Field(False, description="Remove documents whose files under these folders are gone.")


class Deleted(BaseModel):
    deleted: int


class Dropped(BaseModel):
    name: str
    dropped: bool = True


class SearchQuery(_Request):
    """What a search asks besides its options: the query and the filters."""

    query: Text = Field(max_length=MAX_QUERY_CHARS, examples=["如何优化数据库"])
    source: Text | None = Field(None, max_length=4096, description="Only sources starting with this prefix.")
    file_types: list[Annotated[Text, Field(max_length=32)]] = Field(
        default_factory=list, max_length=64, description="e.g. `pdf`, `md`."
    )

    def overrides(self) -> dict[str, Any]:
        """The search options this request sets (by their ``SearchSettings`` names)."""
        return {
            name: getattr(self, name)
            for name in SearchSettings.model_fields
            if getattr(self, name, None) is not None
        }


def _optional(field: FieldInfo) -> tuple[Any, Any]:
    """``field`` as an optional request field: the same type, constraints and description, default None."""
    text = field.description or ""
    description = f"{text[:1].upper()}{text[1:]}. Default: the server's `search` settings."
    optional: Any = Optional[field.annotation]  # noqa: UP045 (a type built at runtime)
    if field.metadata:
        optional = Annotated[(optional, *field.metadata)]
    return optional, Field(None, description=description)


if TYPE_CHECKING:
    SearchRequest = SearchQuery
else:
    # One field per search option, derived from SearchSettings: name, type, range and help are declared once.
    SearchRequest = create_model(
        "SearchRequest",
        __base__=SearchQuery,
        __doc__="One search; omitted options take the server's `search` settings (as the CLI's flags do).",
        **{name: _optional(field) for name, field in SearchSettings.model_fields.items()},
    )


class HitOut(BaseModel):
    """The hit of ``finesift search --json``: `text == extracted[start:end]`; `page` for PDFs."""

    doc_id: str
    source: str
    text: str
    score: float
    start: int
    end: int
    page: int | None = None


class SearchResponse(BaseModel):
    hits: list[HitOut]
    query_terms: list[str] = Field(
        default_factory=list, description="The query's BM25 terms (lower case), for highlighting."
    )
    score: Literal["rerank", "rrf", "cosine", "bm25"] = Field(
        "rrf",
        description="What each hit's `score` is: `rerank` the reranker's probability in [0, 1]; `rrf` the "
        "fused rank score (hybrid without reranking); `cosine` the dense similarity; `bm25` the BM25 score.",
    )


IndexResult.model_rebuild()
