"""Reranker backends by name. The key is also the CLI value and the pip extra."""

from __future__ import annotations

from finesift.registry import Entry, load_factory
from finesift.rerank.base import RerankBackend
from finesift.settings import HubSettings, RerankSettings

BACKENDS: dict[str, Entry] = {
    "transformers": Entry("finesift.rerank.transformers:create", "transformers"),
    "fake": Entry("finesift.rerank.fake:create"),
    "remote": Entry("finesift.rerank.remote:create", "remote"),
    "llamacpp": Entry("finesift.rerank.llamacpp:create", "llamacpp"),
    "vllm": Entry("finesift.rerank.vllm:create", "vllm"),
}


def choose_backend(settings: RerankSettings) -> str:
    """Resolve ``backend="auto"``: ``fake``, ``.gguf`` files (llamacpp), a URL (remote), else transformers."""
    if settings.backend != "auto":
        return settings.backend
    if settings.model == "fake":
        return "fake"
    if settings.model.lower().endswith(".gguf"):
        return "llamacpp"
    return "remote" if settings.url else "transformers"


def create_backend(settings: RerankSettings, hub: HubSettings | None = None) -> RerankBackend:
    """Build the backend that ``settings`` name."""
    factory = load_factory("reranker", choose_backend(settings), BACKENDS)
    backend: RerankBackend = factory(settings, hub or HubSettings())
    return backend
