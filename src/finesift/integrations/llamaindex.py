"""LlamaIndex: a Qwen3 embedding model, a reranking node postprocessor and a knowledge-base retriever.

Each class takes either a finesift object (runs in this process) or the URL of a running
``finesift serve``::

    from finesift.integrations.llamaindex import FinesiftEmbedding, FinesiftRerank, FinesiftRetriever

    Settings.embed_model = FinesiftEmbedding(embedder="http://127.0.0.1:8000")
    postprocessor = FinesiftRerank(reranker=load_reranker("Qwen/Qwen3-Reranker-0.6B"), top_n=3)
    retriever = FinesiftRetriever("http://127.0.0.1:8000", kb="handbook", top_k=5)

Query embeddings carry the Qwen3 instruction, text embeddings do not. Needs
``pip install 'finesift[llamaindex]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ConfigDict, PrivateAttr, SecretStr

from finesift.embedding.embedder import Embedder
from finesift.errors import MissingDependency
from finesift.integrations.adapters import RerankFields
from finesift.integrations.sources import (
    Connection,
    EmbedSource,
    SearchRequest,
    chunk_id,
    citation,
    embed_source,
    search_source,
)
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.types import Hit

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # the module is imported only when a user asks for it
    raise MissingDependency(
        "llama-index-core", "llamaindex", "needed by finesift.integrations.llamaindex"
    ) from exc

__all__ = ["FinesiftEmbedding", "FinesiftRerank", "FinesiftRetriever"]


class FinesiftEmbedding(BaseEmbedding):
    """LlamaIndex ``BaseEmbedding``: query embeddings with the Qwen3 instruction, text ones without.

    ``embedder`` is a finesift :class:`~finesift.Embedder` or a server URL; ``instruction`` the query
    task (default: the embedder's or server's); ``dim`` a Matryoshka dimension.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    embedder: Embedder | str
    instruction: str | None = None
    dim: int | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    embed_batch_size: int = 32
    _source: EmbedSource = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        connection = Connection(api_key=self.api_key, timeout_s=self.timeout_s)
        self._source = embed_source(
            self.embedder, instruction=self.instruction, dim=self.dim, connection=connection
        )
        if self.model_name == "unknown":
            self.model_name = self.embedder if isinstance(self.embedder, str) else self.embedder.model_id

    @classmethod
    def class_name(cls) -> str:
        return "FinesiftEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._source.embed([query], input_type="query")[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._source.aembed([query], input_type="query"))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._source.embed([text], input_type="document")[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._source.aembed([text], input_type="document"))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._source.embed(texts, input_type="document")

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._source.aembed(texts, input_type="document")


class FinesiftRerank(RerankFields, BaseNodePostprocessor):
    """A node postprocessor that keeps the ``top_n`` nodes by Qwen3 reranker score (``None``: all).

    Each returned ``NodeWithScore`` carries the reranker's P(relevant) as its score, best first,
    ties in input order; the nodes themselves are not changed.
    """

    @classmethod
    def class_name(cls) -> str:
        return "FinesiftRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        texts = _texts(nodes, query_bundle)
        if not texts:
            return []
        ranked = self._source.rerank(_query(query_bundle), texts, top_n=self.top_n)
        return [NodeWithScore(node=nodes[i].node, score=score) for i, score in ranked]

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        texts = _texts(nodes, query_bundle)
        if not texts:
            return []
        ranked = await self._source.arerank(_query(query_bundle), texts, top_n=self.top_n)
        return [NodeWithScore(node=nodes[i].node, score=score) for i, score in ranked]


def _query(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise ValueError("reranking needs the query: pass query_bundle or query_str")
    return query_bundle.query_str


def _texts(nodes: Sequence[NodeWithScore], query_bundle: QueryBundle | None) -> list[str]:
    _query(query_bundle)
    return [n.node.get_content() for n in nodes]


class FinesiftRetriever(BaseRetriever):
    """A retriever over a finesift knowledge base: hybrid recall, then rerank, nodes with citations.

    ``knowledge_base`` is a :class:`~finesift.kb.knowledge_base.KnowledgeBase` or a server URL (then
    ``kb`` names the knowledge base). ``top_k`` and ``search_options`` override the search settings;
    ``source_prefix`` and ``file_types`` filter. Each node's id is the chunk id and its metadata holds
    ``source``, ``score``, ``chunk_id``, ``doc_id``, ``start``, ``end``, ``page``, ``kb``.
    """

    def __init__(  # noqa: PLR0913 - the search's options, all keyword-only
        self,
        knowledge_base: KnowledgeBase | str,
        *,
        kb: str | None = None,
        top_k: int | None = None,
        search_options: dict[str, Any] | None = None,
        source_prefix: str | None = None,
        file_types: Sequence[str] = (),
        api_key: SecretStr | str | None = None,
        timeout_s: float = 60.0,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        request = SearchRequest.of(
            {**(search_options or {}), "top_k": top_k}, source_prefix=source_prefix, file_types=file_types
        )
        connection = Connection(api_key=api_key, timeout_s=timeout_s)
        self._source = search_source(knowledge_base, kb=kb, request=request, connection=connection)
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(hit, self._source.kb) for hit in self._source.search(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(hit, self._source.kb) for hit in await self._source.asearch(query_bundle.query_str)]


def _node(hit: Hit, kb: str) -> NodeWithScore:
    node = TextNode(
        id_=chunk_id(hit),
        text=hit.text,
        metadata=citation(hit, kb),
        start_char_idx=hit.start,
        end_char_idx=hit.end,
    )
    return NodeWithScore(node=node, score=hit.score)
