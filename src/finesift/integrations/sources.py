"""What the framework adapters call: embeddings, reranking and KB search, in process or over HTTP.

Each concept has one Protocol and two implementations: one around a finesift object (``Embedder``,
``Reranker``, ``KnowledgeBase``) that runs in this process, one that asks a running
``finesift serve`` by URL. The framework modules (``langchain``, ``llamaindex``) only translate
these results into their own types, so both frameworks and both modes share every rule:

- queries are embedded with the Qwen3 instruction, documents without (over HTTP the request says
  ``input_type: "query"`` and carries the instruction, so the server applies the same policy);
- reranked order is the library's: score descending, ties by input position;
- a KB hit keeps its citation: doc id, source, offsets, page, and a chunk id built from them.

In-process work runs in a worker thread for the async methods (the models are synchronous).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from finesift.embedding.embedder import Embedder, InputType
from finesift.errors import BackendError, InvalidRequest
from finesift.integrations.client import ServerClient, kb_path
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.rerank.base import Reranker
from finesift.retrieval.options import SearchOptions
from finesift.retrieval.pipeline import validate_query
from finesift.settings import SearchSettings, validated
from finesift.store.base import Filters
from finesift.types import Hit
from finesift.validation import validate_texts

#: Texts per ``/v1/embeddings`` request and documents per ``/v1/rerank`` request (the server's defaults
#: allow 2048 and 1000).
HTTP_BATCH = 256
HTTP_RERANK_BATCH = 1000


@dataclass(frozen=True)
class Connection:
    """How to reach a finesift server: its key, timeout and retries (the URL is the target)."""

    api_key: SecretStr | str | None = None
    timeout_s: float = 60.0
    max_retries: int = 3

    def client(self, url: str) -> ServerClient:
        return ServerClient(url, api_key=self.api_key, timeout_s=self.timeout_s, max_retries=self.max_retries)


def chunk_id(hit: Hit) -> str:
    """A stable id of a hit's chunk: ``{doc_id}:{start}-{end}`` (offsets into the document's text)."""
    return f"{hit.doc_id}:{hit.start}-{hit.end}"


def citation(hit: Hit, kb: str) -> dict[str, Any]:
    """The metadata every framework document of a KB hit carries."""
    return {
        "source": hit.source,
        "score": hit.score,
        "chunk_id": chunk_id(hit),
        "doc_id": hit.doc_id,
        "start": hit.start,
        "end": hit.end,
        "page": hit.page,
        "kb": kb,
    }


# ---- embeddings ----------------------------------------------------------------------------------


class EmbedSource(Protocol):
    """Vectors for texts: ``query`` ones with the instruction, ``document`` ones raw."""

    def embed(self, texts: Sequence[str], *, input_type: InputType) -> list[list[float]]: ...

    async def aembed(self, texts: Sequence[str], *, input_type: InputType) -> list[list[float]]: ...


class LocalEmbed:
    """An :class:`Embedder` in this process."""

    def __init__(self, embedder: Embedder, *, instruction: str | None = None, dim: int | None = None) -> None:
        self.embedder, self.instruction, self.dim = embedder, instruction, dim

    @property
    def name(self) -> str:
        return self.embedder.model_id

    def embed(self, texts: Sequence[str], *, input_type: InputType) -> list[list[float]]:
        if not texts:
            return []
        out = self.embedder.encode(
            texts,
            input_type=input_type,
            instruction=self.instruction if input_type == "query" else None,
            dim=self.dim,
        )
        vectors: list[list[float]] = out.vectors.tolist()
        return vectors

    async def aembed(self, texts: Sequence[str], *, input_type: InputType) -> list[list[float]]:
        return await asyncio.to_thread(self.embed, texts, input_type=input_type)


class ServerEmbed:
    """``POST /v1/embeddings`` of a finesift server, with ``input_type`` and ``instruction``."""

    def __init__(
        self,
        client: ServerClient,
        *,
        model: str | None = None,
        instruction: str | None = None,
        dim: int | None = None,
    ) -> None:
        self.client, self.model, self.instruction, self.dim = client, model, instruction, dim

    @property
    def name(self) -> str:
        return self.model or self.client.url

    def _payloads(self, texts: Sequence[str], input_type: InputType) -> list[dict[str, Any]]:
        items = validate_texts(texts)
        base: dict[str, Any] = {"input_type": input_type, "encoding_format": "float"}
        if self.model:
            base["model"] = self.model
        if self.dim is not None:
            base["dimensions"] = self.dim
        if input_type == "query" and self.instruction is not None:
            base["instruction"] = self.instruction
        return [{**base, "input": items[i : i + HTTP_BATCH]} for i in range(0, len(items), HTTP_BATCH)]

    def embed(self, texts: Sequence[str], *, input_type: InputType) -> list[list[float]]:
        payloads = self._payloads(texts, input_type)
        return [v for p in payloads for v in _vectors(self.client.post("/v1/embeddings", p), p["input"])]

    async def aembed(self, texts: Sequence[str], *, input_type: InputType) -> list[list[float]]:
        out: list[list[float]] = []
        for payload in self._payloads(texts, input_type):
            out.extend(_vectors(await self.client.apost("/v1/embeddings", payload), payload["input"]))
        return out


def _vectors(body: Any, texts: Sequence[str]) -> list[list[float]]:
    """The vectors of an OpenAI embeddings answer, in input order (by ``index``)."""
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(rows, list) or sorted(r.get("index", -1) for r in rows) != list(range(len(texts))):
        raise BackendError(
            f"the finesift server returned a malformed embeddings answer for {len(texts)} texts"
        )
    return [[float(x) for x in row["embedding"]] for row in sorted(rows, key=lambda r: r["index"])]


def embed_source(
    target: Embedder | str, *, instruction: str | None, dim: int | None, connection: Connection
) -> EmbedSource:
    """:class:`LocalEmbed` for an :class:`Embedder`, :class:`ServerEmbed` for a server URL."""
    if isinstance(target, Embedder):
        return LocalEmbed(target, instruction=instruction, dim=dim)
    if isinstance(target, str):
        return ServerEmbed(connection.client(target), instruction=instruction, dim=dim)
    raise InvalidRequest(f"embedder must be a finesift Embedder or a server URL, not {type(target).__name__}")


# ---- reranking -----------------------------------------------------------------------------------


class RerankSource(Protocol):
    """``(index, score)`` pairs, best first (ties by input position), at most ``top_n``."""

    def rerank(
        self, query: str, documents: Sequence[str], *, top_n: int | None
    ) -> list[tuple[int, float]]: ...

    async def arerank(
        self, query: str, documents: Sequence[str], *, top_n: int | None
    ) -> list[tuple[int, float]]: ...


class LocalRerank:
    """A :class:`Reranker` in this process."""

    def __init__(self, reranker: Reranker, *, instruction: str | None = None) -> None:
        self.reranker, self.instruction = reranker, instruction

    def rerank(self, query: str, documents: Sequence[str], *, top_n: int | None) -> list[tuple[int, float]]:
        ranked = self.reranker.rerank(query, documents, top_n=top_n, instruction=self.instruction)
        return [(r.index, r.score) for r in ranked]

    async def arerank(
        self, query: str, documents: Sequence[str], *, top_n: int | None
    ) -> list[tuple[int, float]]:
        return await asyncio.to_thread(self.rerank, query, documents, top_n=top_n)


class ServerRerank:
    """``POST /v1/rerank`` of a finesift server (documents sent in batches, ranked here)."""

    def __init__(self, client: ServerClient, *, model: str | None = None, instruction: str | None = None):
        self.client, self.model, self.instruction = client, model, instruction

    def _payloads(self, query: str, documents: Sequence[str]) -> list[dict[str, Any]]:
        docs = validate_texts(documents, what="documents")
        base: dict[str, Any] = {"query": query}
        if self.model:
            base["model"] = self.model
        if self.instruction is not None:
            base["instruction"] = self.instruction
        step = HTTP_RERANK_BATCH
        return [{**base, "documents": docs[i : i + step], "offset": i} for i in range(0, len(docs), step)]

    def rerank(self, query: str, documents: Sequence[str], *, top_n: int | None) -> list[tuple[int, float]]:
        check_top_n(top_n)
        scores: dict[int, float] = {}
        for payload in self._payloads(query, documents):
            offset = payload.pop("offset")
            scores.update(_scores(self.client.post("/v1/rerank", payload), offset, len(payload["documents"])))
        return ranked(scores, top_n)

    async def arerank(
        self, query: str, documents: Sequence[str], *, top_n: int | None
    ) -> list[tuple[int, float]]:
        check_top_n(top_n)
        scores: dict[int, float] = {}
        for payload in self._payloads(query, documents):
            offset = payload.pop("offset")
            body = await self.client.apost("/v1/rerank", payload)
            scores.update(_scores(body, offset, len(payload["documents"])))
        return ranked(scores, top_n)


def _scores(body: Any, offset: int, count: int) -> dict[int, float]:
    rows = body.get("results") if isinstance(body, dict) else None
    if not isinstance(rows, list) or sorted(r.get("index", -1) for r in rows) != list(range(count)):
        raise BackendError(f"the finesift server returned a malformed rerank answer for {count} documents")
    return {offset + int(r["index"]): float(r["relevance_score"]) for r in rows}


def check_top_n(top_n: object) -> None:
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise InvalidRequest(f"top_n must be a positive integer, not {top_n!r}")


def ranked(scores: dict[int, float], top_n: int | None) -> list[tuple[int, float]]:
    """The library's order (:meth:`Reranker.finish`): score descending, ties by input position."""
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [(i, scores[i]) for i in order[:top_n]]


def rerank_source(target: Reranker | str, *, instruction: str | None, connection: Connection) -> RerankSource:
    """:class:`LocalRerank` for a :class:`Reranker`, :class:`ServerRerank` for a server URL."""
    if isinstance(target, Reranker):
        return LocalRerank(target, instruction=instruction)
    if isinstance(target, str):
        return ServerRerank(connection.client(target), instruction=instruction)
    raise InvalidRequest(f"reranker must be a finesift Reranker or a server URL, not {type(target).__name__}")


# ---- knowledge-base search -----------------------------------------------------------------------


class SearchSource(Protocol):
    """Hybrid recall then rerank over one knowledge base: hits with citations, best first."""

    @property
    def kb(self) -> str: ...

    def search(self, query: str) -> list[Hit]: ...

    async def asearch(self, query: str) -> list[Hit]: ...


@dataclass(frozen=True)
class SearchRequest:
    """One search's options (``SearchSettings`` names; unset ones take the KB's or server's) and filters."""

    options: dict[str, Any]
    source_prefix: str | None = None
    file_types: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, options: dict[str, Any], *, source_prefix: str | None, file_types: Sequence[str]
    ) -> SearchRequest:
        """Validated: unknown option names and out-of-range values raise :class:`InvalidRequest`."""
        fields = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(fields) - set(SearchSettings.model_fields))
        if unknown:
            names = ", ".join(SearchSettings.model_fields)
            raise InvalidRequest(f"unknown search option {unknown[0]!r}; use one of {names}")
        validated(SearchSettings, fields)
        types = tuple(t.lower().lstrip(".") for t in file_types if t.strip())
        return cls(fields, source_prefix or None, types)


class LocalSearch:
    """``KnowledgeBase.search`` in this process."""

    def __init__(self, kb: KnowledgeBase, request: SearchRequest) -> None:
        self.base = kb
        filters = Filters(source_prefix=request.source_prefix, file_types=request.file_types)
        self.options = SearchOptions.of(kb.settings.search, filters=filters, **request.options)

    @property
    def kb(self) -> str:
        return self.base.name

    def search(self, query: str) -> list[Hit]:
        return self.base.search(query, self.options)

    async def asearch(self, query: str) -> list[Hit]:
        return await asyncio.to_thread(self.search, query)


class ServerSearch:
    """``POST /v1/kbs/{kb}/search`` of a finesift server."""

    def __init__(self, client: ServerClient, kb: str, request: SearchRequest) -> None:
        self.client, self.path, self.name = client, kb_path(kb), kb
        self.body: dict[str, Any] = dict(request.options)
        if request.source_prefix:
            self.body["source"] = request.source_prefix
        if request.file_types:
            self.body["file_types"] = list(request.file_types)

    @property
    def kb(self) -> str:
        return self.name

    def search(self, query: str) -> list[Hit]:
        return _hits(self.client.post(self.path, {**self.body, "query": validate_query(query)}))

    async def asearch(self, query: str) -> list[Hit]:
        return _hits(await self.client.apost(self.path, {**self.body, "query": validate_query(query)}))


def _hits(body: Any) -> list[Hit]:
    rows = body.get("hits") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise BackendError("the finesift server returned a search answer without hits")
    fields = ("doc_id", "source", "text", "score", "start", "end", "page")
    try:
        return [Hit(**{k: row.get(k) for k in fields}) for row in rows]
    except (AttributeError, TypeError) as exc:
        raise BackendError("the finesift server returned a malformed search hit") from exc


def search_source(
    target: KnowledgeBase | str, *, kb: str | None, request: SearchRequest, connection: Connection
) -> SearchSource:
    """:class:`LocalSearch` for a :class:`KnowledgeBase`, :class:`ServerSearch` for a server URL + ``kb``."""
    if isinstance(target, KnowledgeBase):
        if kb is not None and kb != target.name:
            raise InvalidRequest(
                f"kb={kb!r} names another knowledge base than the one given ({target.name!r})"
            )
        return LocalSearch(target, request)
    if isinstance(target, str):
        return ServerSearch(connection.client(target), kb or "", request)
    raise InvalidRequest(
        f"knowledge_base must be a finesift KnowledgeBase or a server URL, not {type(target).__name__}"
    )
