"""Embedding backends by name. The key is also the CLI value and the pip extra."""

from __future__ import annotations

from finesift.embedding.base import EmbeddingBackend
from finesift.embedding.sentence_transformers import is_sentence_transformers_model
from finesift.hub import choose_backend as hub_choice
from finesift.registry import Entry, load_factory
from finesift.settings import EmbeddingSettings, HubSettings

BACKENDS: dict[str, Entry] = {
    "transformers": Entry("finesift.embedding.transformers:create", "transformers"),
    "fake": Entry("finesift.embedding.fake:create"),
    "openai": Entry("finesift.embedding.pool:create", "openai"),
    "ollama": Entry("finesift.embedding.ollama:create", "ollama"),
    "llamacpp": Entry("finesift.embedding.llamacpp:create", "llamacpp"),
    "vllm": Entry("finesift.embedding.vllm:create", "vllm"),
    "sentence-transformers": Entry(
        "finesift.embedding.sentence_transformers:create", "sentence-transformers"
    ),
}


def choose_backend(settings: EmbeddingSettings) -> str:
    """Resolve ``backend="auto"`` (:func:`finesift.hub.choose_backend`; a URL means openai, a
    sentence-transformers directory whose pooling is not last-token, e.g. all-MiniLM-L6-v2, means
    sentence-transformers)."""
    return hub_choice(settings, remote="openai", sentence_transformers=is_sentence_transformers_model)


def create_backend(settings: EmbeddingSettings, hub: HubSettings | None = None) -> EmbeddingBackend:
    """Build the backend that ``settings`` name."""
    factory = load_factory("embedding", choose_backend(settings), BACKENDS)
    backend: EmbeddingBackend = factory(settings, hub or HubSettings())
    return backend
