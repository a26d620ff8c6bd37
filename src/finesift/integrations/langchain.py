"""LangChain: Qwen3 embeddings, a reranking document compressor and a knowledge-base retriever.

Each class takes either a finesift object (runs in this process) or the URL of a running
``finesift serve``::

    from finesift.integrations.langchain import FinesiftEmbeddings, FinesiftRerank, FinesiftRetriever

    embeddings = FinesiftEmbeddings(load_embedder("Qwen/Qwen3-Embedding-0.6B"))   # or "http://127.0.0.1:8000"
    compressor = FinesiftRerank(reranker="http://127.0.0.1:8000", top_n=3)
    retriever = FinesiftRetriever(knowledge_base="http://127.0.0.1:8000", kb="handbook", top_k=5)

``embed_query`` adds the Qwen3 query instruction and ``embed_documents`` does not, as the model
card prescribes. Needs ``pip install 'finesift[langchain]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from finesift.embedding.embedder import Embedder
from finesift.errors import MissingDependency
from finesift.integrations.adapters import RerankFields
from finesift.integrations.sources import (
    Connection,
    SearchRequest,
    SearchSource,
    chunk_id,
    citation,
    embed_source,
    search_source,
)
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.types import Hit

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
        Callbacks,
    )
    from langchain_core.documents import BaseDocumentCompressor, Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # the module is imported only when a user asks for it
    raise MissingDependency(
        "langchain-core", "langchain", "needed by finesift.integrations.langchain"
    ) from exc

__all__ = ["FinesiftEmbeddings", "FinesiftRerank", "FinesiftRetriever"]


class FinesiftEmbeddings(Embeddings):
    """LangChain ``Embeddings``: queries with the Qwen3 instruction, documents without.

    ``embedder`` is a finesift :class:`~finesift.Embedder` or a server URL; ``instruction`` the query
    task (a registered name or a sentence; default: the embedder's or server's); ``dim`` a
    Matryoshka dimension. Vectors are L2-normalised.
    """

    def __init__(
        self,
        embedder: Embedder | str,
        *,
        instruction: str | None = None,
        dim: int | None = None,
        api_key: SecretStr | str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        connection = Connection(api_key=api_key, timeout_s=timeout_s)
        self._source = embed_source(embedder, instruction=instruction, dim=dim, connection=connection)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, embedded as it is."""
        return self._source.embed(texts, input_type="document")

    def embed_query(self, text: str) -> list[float]:
        """The vector of ``text`` with the query instruction."""
        return self._source.embed([text], input_type="query")[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._source.aembed(texts, input_type="document")

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._source.aembed([text], input_type="query"))[0]


class FinesiftRerank(RerankFields, BaseDocumentCompressor):
    """A document compressor that keeps the ``top_n`` documents by Qwen3 reranker score.

    The returned documents are copies with ``metadata["relevance_score"]`` (P(relevant), in [0, 1]),
    best first, ties in input order; ``top_n=None`` keeps every document.
    """

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        ranked = self._source.rerank(query, [d.page_content for d in documents], top_n=self.top_n)
        return [_scored(documents[i], score) for i, score in ranked]

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        ranked = await self._source.arerank(query, [d.page_content for d in documents], top_n=self.top_n)
        return [_scored(documents[i], score) for i, score in ranked]


def _scored(document: Document, score: float) -> Document:
    metadata = {**document.metadata, "relevance_score": score}
    return Document(page_content=document.page_content, metadata=metadata, id=document.id)


class FinesiftRetriever(BaseRetriever):
    """A retriever over a finesift knowledge base: hybrid recall, then rerank, hits with citations.

    ``knowledge_base`` is a :class:`~finesift.kb.knowledge_base.KnowledgeBase` or a server URL (then
    ``kb`` names the knowledge base). ``top_k`` and ``search_options`` (``mode``, ``candidates``,
    ``rerank``, ``rerank_top_n``, ``threshold``, ...) override the search settings; ``source_prefix``
    and ``file_types`` filter. Each Document's metadata: ``source``, ``score``, ``chunk_id``,
    ``doc_id``, ``start``, ``end``, ``page``, ``kb``; its ``id`` is the chunk id.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge_base: KnowledgeBase | str
    kb: str | None = None
    top_k: int | None = None
    search_options: dict[str, Any] = Field(default_factory=dict)
    source_prefix: str | None = None
    file_types: list[str] = Field(default_factory=list)
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    _source: SearchSource = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        request = SearchRequest.of(
            {**self.search_options, "top_k": self.top_k},
            source_prefix=self.source_prefix,
            file_types=self.file_types,
        )
        connection = Connection(api_key=self.api_key, timeout_s=self.timeout_s)
        self._source = search_source(self.knowledge_base, kb=self.kb, request=request, connection=connection)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [self._document(hit) for hit in self._source.search(query)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [self._document(hit) for hit in await self._source.asearch(query)]

    def _document(self, hit: Hit) -> Document:
        return Document(page_content=hit.text, metadata=citation(hit, self._source.kb), id=chunk_id(hit))
