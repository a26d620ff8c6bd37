"""Text embedding: the backend Protocol, the Qwen3 policy above it, and the backends."""

from finesift.embedding.base import EmbeddingBackend, EmbeddingOutput
from finesift.embedding.embedder import Embedder
from finesift.embedding.instructions import DEFAULT_TASK, INSTRUCTIONS, format_query, resolve_instruction

__all__ = [
    "DEFAULT_TASK",
    "INSTRUCTIONS",
    "Embedder",
    "EmbeddingBackend",
    "EmbeddingOutput",
    "format_query",
    "resolve_instruction",
]
