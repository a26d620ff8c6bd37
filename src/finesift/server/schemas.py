"""Request and response bodies (pydantic); they are also the served OpenAPI schema.

Limits that depend on settings (inputs per request, documents, tokens) are checked by the
services so that their messages can name the configured value; field descriptions state them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def check_text(text: str) -> str:
    """Refuse text the model cannot read faithfully: lone surrogates and NUL characters."""
    if "\x00" in text:
        raise ValueError("text contains a NUL character (U+0000); remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise ValueError(
            f"text contains a lone surrogate (U+{code:04X}) at {exc.start}; send valid Unicode"
        ) from None
    return text


Text = Annotated[str, AfterValidator(check_text)]


class _Request(BaseModel):
    # Unknown fields are ignored, as the APIs we mirror do; types are strict (no "5" for 5).
    model_config = ConfigDict(extra="ignore", strict=True)


class EmbeddingRequest(_Request):
    """OpenAI ``POST /v1/embeddings``, plus ``input_type``, ``instruction`` and ``truncate``."""

    input: Text | Annotated[list[Text], Field(min_length=1)] = Field(
        description="A text or a list of texts (at most 2048 by default); each non-empty.",
        examples=["What is the capital of China?"],
    )
    model: str | None = Field(None, description="The served embedding model's id (optional).")
    encoding_format: Literal["float", "base64"] = Field(
        "float",
        description="`base64`: little-endian float32 bytes, base64-encoded (what the OpenAI SDK asks for).",
    )
    dimensions: int | None = Field(
        None, ge=1, description="Matryoshka dimension, 32..the model's full dimension."
    )
    input_type: Literal["query", "document"] = Field(
        "document", description="`query` adds the Qwen3 instruction; documents are embedded as they are."
    )
    instruction: Text | None = Field(
        None, description="Query task: a registered name (e.g. `code_search`) or a sentence; queries only."
    )
    truncate: bool | None = Field(
        None,
        description="`true`: cut texts longer than the model window; `false`: refuse them (422); "
        "absent: the server's `embedding.on_overflow` (default `truncate`, as the library).",
    )
    user: str | None = Field(None, description="Accepted for OpenAI compatibility; ignored.")

    @model_validator(mode="before")
    @classmethod
    def _no_token_ids(cls, data: Any) -> Any:
        raw = data.get("input") if isinstance(data, dict) else None
        if isinstance(raw, list) and raw and all(_is_token_ids(x) for x in raw):
            raise ValueError(
                "input as token ids is not supported (they would be another model's tokens); send strings. "
                "LangChain's OpenAIEmbeddings: set check_embedding_ctx_length=False"
            )
        return data


def _is_token_ids(value: object) -> bool:
    return isinstance(value, int) or (isinstance(value, list) and all(isinstance(x, int) for x in value))


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class TextDocument(BaseModel):
    """A document object (Cohere v1, Jina); extra fields are kept and returned with the document."""

    model_config = ConfigDict(extra="allow", strict=True)
    text: Text


class RerankRequest(_Request):
    """``POST /v1/rerank``: the Cohere v1 and Jina shapes, plus ``instruction``."""

    query: Text = Field(description="The query every document is scored against.")
    documents: list[Text | TextDocument] = Field(
        min_length=1, description="Strings or objects with `text` (at most 1000 by default); each non-empty."
    )
    model: str | None = Field(None, description="The served reranker's id (optional).")
    top_n: int | None = Field(None, ge=1, description="Return the best N (1..1000); default all.")
    return_documents: bool = Field(False, description="Include each document in its result.")
    instruction: Text | None = Field(None, description="Task instruction: a registered name or a sentence.")


class RerankDocumentOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str


class RerankResult(BaseModel):
    index: int = Field(description="Position of the document in the request.")
    relevance_score: float = Field(description="P(document meets the query), in [0, 1].")
    document: RerankDocumentOut | None = None


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int


class RerankMeta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits


class RerankUsage(BaseModel):
    total_tokens: int


class RerankResponse(BaseModel):
    """Cohere v1 (``id``, ``results``, ``meta``) and Jina (``model``, ``usage``, ``results``) at once."""

    id: str
    model: str
    results: list[RerankResult] = Field(description="Sorted by relevance_score, highest first.")
    usage: RerankUsage
    meta: RerankMeta


class RerankV2Request(_Request):
    """Cohere v2 ``POST /v2/rerank`` (plus the optional ``instruction``)."""

    model: str = Field(description="The served reranker's id.")
    query: Text
    documents: list[Text] = Field(
        min_length=1, description="Strings (at most 1000 by default); each non-empty."
    )
    top_n: int | None = Field(None, ge=1, description="Return the best N (1..1000); default all.")
    max_tokens_per_doc: int | None = Field(
        None, ge=1, description="Accepted for compatibility (>= 1); documents are cut to the model window."
    )
    priority: int | None = Field(None, description="Accepted for compatibility; ignored.")
    instruction: Text | None = Field(None, description="Task instruction: a registered name or a sentence.")


class RerankV2Result(BaseModel):
    index: int
    relevance_score: float


class RerankV2Response(BaseModel):
    id: str
    results: list[RerankV2Result]
    meta: RerankMeta


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "finesift"
    task: Literal["embedding", "embedding-query", "rerank"] = Field(
        description="`embedding-query`: the `<name>:query` alias, whose inputs are embedded as queries."
    )
    dimension: int | None = Field(default=None, description="Full embedding dimension (embedding models).")
    max_length: int = Field(description="Tokens per text (embedding) or per pair (rerank).")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "loading", "draining", "failed"]
    detail: str | None = None


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI-shaped error body."""

    error: ErrorDetail
