"""Reranker backends by name. The key is also the CLI value and the pip extra."""

from __future__ import annotations

from finesift.registry import Entry, load_factory
from finesift.rerank.base import RerankBackend
from finesift.settings import HubSettings, RerankSettings

BACKENDS: dict[str, Entry] = {
    "transformers": Entry("finesift.rerank.transformers:create", "transformers"),
    "fake": Entry("finesift.rerank.fake:create"),
}


def choose_backend(settings: RerankSettings) -> str:
    """Resolve ``backend="auto"``: the ``fake`` model uses the fake, others transformers."""
    if settings.backend != "auto":
        return settings.backend
    return "fake" if settings.model == "fake" else "transformers"


def create_backend(settings: RerankSettings, hub: HubSettings | None = None) -> RerankBackend:
    """Build the backend that ``settings`` name."""
    factory = load_factory("reranker", choose_backend(settings), BACKENDS)
    backend: RerankBackend = factory(settings, hub or HubSettings())
    return backend
