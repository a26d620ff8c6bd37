"""Embedding backends by name. The key is also the CLI value and the pip extra."""

from __future__ import annotations

from finesift.embedding.base import EmbeddingBackend
from finesift.registry import Entry, load_factory
from finesift.settings import EmbeddingSettings, HubSettings

BACKENDS: dict[str, Entry] = {
    "transformers": Entry("finesift.embedding.transformers:create", "transformers"),
    "fake": Entry("finesift.embedding.fake:create"),
    "sentence-transformers": Entry(
        "finesift.embedding.sentence_transformers:create", "sentence-transformers"
    ),
}


def choose_backend(settings: EmbeddingSettings) -> str:
    """Resolve ``backend="auto"``: ``fake``/``fake:DIM`` models use the fake; a local sentence-transformers
    directory whose pooling is not last-token (e.g. all-MiniLM-L6-v2) uses ``sentence-transformers``;
    others transformers."""
    from finesift.embedding.sentence_transformers import is_sentence_transformers_model

    if settings.backend != "auto":
        return settings.backend
    if settings.model == "fake" or settings.model.startswith("fake:"):
        return "fake"
    if is_sentence_transformers_model(settings.model):
        return "sentence-transformers"
    return "transformers"


def create_backend(settings: EmbeddingSettings, hub: HubSettings | None = None) -> EmbeddingBackend:
    """Build the backend that ``settings`` name."""
    factory = load_factory("embedding", choose_backend(settings), BACKENDS)
    backend: EmbeddingBackend = factory(settings, hub or HubSettings())
    return backend
