"""Reranker backends by name. The key is also the CLI value and the pip extra."""

from __future__ import annotations

from finesift.hub import choose_backend as hub_choice
from finesift.registry import Entry, load_factory
from finesift.rerank.base import RerankBackend
from finesift.rerank.cross_encoder import is_cross_encoder_model
from finesift.settings import HubSettings, RerankSettings

BACKENDS: dict[str, Entry] = {
    "transformers": Entry("finesift.rerank.transformers:create", "transformers"),
    "fake": Entry("finesift.rerank.fake:create"),
    "remote": Entry("finesift.rerank.remote:create", "remote"),
    "llamacpp": Entry("finesift.rerank.llamacpp:create", "llamacpp"),
    "ollama": Entry("finesift.rerank.ollama:create", "ollama"),
    "vllm": Entry("finesift.rerank.vllm:create", "vllm"),
    "sentence-transformers": Entry("finesift.rerank.cross_encoder:create", "sentence-transformers"),
}


def choose_backend(settings: RerankSettings) -> str:
    """Resolve ``backend="auto"`` (:func:`finesift.hub.choose_backend`; a URL means remote, a local
    cross-encoder directory means sentence-transformers)."""
    return hub_choice(settings, remote="remote", sentence_transformers=is_cross_encoder_model)


def create_backend(settings: RerankSettings, hub: HubSettings | None = None) -> RerankBackend:
    """Build the backend that ``settings`` name."""
    factory = load_factory("reranker", choose_backend(settings), BACKENDS)
    backend: RerankBackend = factory(settings, hub or HubSettings())
    return backend
