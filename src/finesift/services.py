"""Composition root: turn :class:`Settings` into ready objects. The CLI and the server both use it.

``build_embedder`` and ``build_reranker`` live in :mod:`finesift.embedding.factory` and
:mod:`finesift.rerank.factory` (so lower layers can build models too) and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finesift.embedding.embedder import Embedder
from finesift.embedding.factory import build_embedder
from finesift.rerank.base import Reranker
from finesift.rerank.factory import build_reranker
from finesift.settings import EmbeddingSettings, HubSettings, RerankSettings, Settings

__all__ = ["Services", "build_embedder", "build_reranker", "build_services", "load_embedder", "load_reranker"]


@dataclass
class Services:
    """Lazily built models for one process; each is loaded on first use and then shared."""

    settings: Settings
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def embedder(self) -> Embedder:
        if "embedder" not in self._cache:
            self._cache["embedder"] = build_embedder(self.settings.embedding, self.settings.hub)
        embedder: Embedder = self._cache["embedder"]
        return embedder

    @property
    def reranker(self) -> Reranker:
        if "reranker" not in self._cache:
            self._cache["reranker"] = build_reranker(self.settings.reranker, self.settings.hub)
        reranker: Reranker = self._cache["reranker"]
        return reranker


def build_services(settings: Settings | None = None) -> Services:
    """The composition root used by the CLI and the server."""
    return Services(settings or Settings())


def _hub(hub: str | None, offline: bool | None) -> HubSettings:
    base = Settings().hub
    return base.model_copy(
        update={k: v for k, v in {"source": hub, "offline": offline}.items() if v is not None}
    )


def load_embedder(
    model: str = EmbeddingSettings().model,
    *,
    hub: str | None = None,
    offline: bool | None = None,
    **options: Any,
) -> Embedder:
    """Load an embedder by hub id or local path; ``options`` are :class:`EmbeddingSettings` fields."""
    settings = EmbeddingSettings(model=model, **options)
    return build_embedder(settings, _hub(hub, offline))


def load_reranker(
    model: str = RerankSettings().model,
    *,
    hub: str | None = None,
    offline: bool | None = None,
    **options: Any,
) -> Reranker:
    """Load a reranker by hub id or local path; ``options`` are :class:`RerankSettings` fields."""
    settings = RerankSettings(model=model, **options)
    return build_reranker(settings, _hub(hub, offline))
