"""Reranking: the backend Protocol, the Qwen3 prompt, and the backends."""

from finesift.rerank.base import RankedDocument, RerankBackend, Reranker, RerankOutput

__all__ = ["RankedDocument", "RerankBackend", "RerankOutput", "Reranker"]
