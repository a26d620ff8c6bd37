"""Reranker backends by name. The key is also the CLI value and the pip extra."""

from __future__ import annotations

from finesift.hub import parse_gguf_ref
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
    """Resolve ``backend="auto"``: fake; ``.gguf`` files, GGUF hub repositories and ``ollama:NAME:TAG``
    (llamacpp); a URL
    (remote); a local cross-encoder directory (sentence-transformers); else transformers."""
    if settings.backend != "auto":
        return settings.backend
    if settings.model == "fake":
        return "fake"
    if (
        settings.model.lower().endswith(".gguf")
        or settings.model.startswith("ollama:")
        or parse_gguf_ref(settings.model, settings.gguf_type)
    ):
        return "llamacpp"
    if settings.url:
        return "remote"
    return "sentence-transformers" if is_cross_encoder_model(settings.model) else "transformers"


def create_backend(settings: RerankSettings, hub: HubSettings | None = None) -> RerankBackend:
    """Build the backend that ``settings`` name."""
    factory = load_factory("reranker", choose_backend(settings), BACKENDS)
    backend: RerankBackend = factory(settings, hub or HubSettings())
    return backend
