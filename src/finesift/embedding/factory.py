"""Settings to a ready :class:`Embedder`: the one place the embedding section becomes an object.

It lives here, below the composition root, so that the knowledge base, eval and doctor build models
the same way as :mod:`finesift.services` without importing it.
"""

from __future__ import annotations

from finesift.embedding.embedder import Embedder
from finesift.embedding.registry import create_backend
from finesift.settings import EmbeddingSettings, HubSettings


def build_embedder(settings: EmbeddingSettings, hub: HubSettings | None = None) -> Embedder:
    """An :class:`Embedder` over the backend that ``settings`` name."""
    return Embedder(
        create_backend(settings, hub), instruction=settings.instruction, on_overflow=settings.on_overflow
    )
