"""Ollama's ``/api/embed`` endpoint (reranking through Ollama is :mod:`finesift.rerank.ollama`).

Ollama truncates over-long inputs to its context silently by default; this client asks for
``truncate: false`` and a context of ``max_length`` tokens, so an over-long text fails loudly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finesift.embedding.remote import RemoteEmbedderBase, decode_embedding, split_tokens
from finesift.errors import BackendError
from finesift.runtime.http import endpoint_url
from finesift.runtime.ollama_store import keep_alive_value, served_name
from finesift.settings import EmbeddingSettings, HubSettings

DEFAULT_URL = "http://127.0.0.1:11434"


class OllamaEmbedder(RemoteEmbedderBase):
    """Vectors from Ollama's ``/api/embed`` (which returns them L2-normalised, in input order)."""

    backend_name = "ollama"

    def endpoint(self, url: str) -> str:
        return endpoint_url(url, "/api/embed")

    def _send(self, chunk: Sequence[str], offset: int) -> list[tuple[np.ndarray, int]]:
        payload: dict[str, object] = {
            "model": served_name(self.settings.model),
            "input": list(chunk),
            "truncate": False,
            "options": {"num_ctx": self.settings.max_length},
        }
        if self.settings.keep_alive is not None:
            payload["keep_alive"] = keep_alive_value(self.settings.keep_alive)
        body = self.client.post_json(self.url, payload)
        rows = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise BackendError(
                f"{self.url} answered without an 'embeddings' list; is it Ollama's /api/embed?"
            )
        if len(rows) != len(chunk):
            raise BackendError(f"{self.url} returned {len(rows)} embeddings for {len(chunk)} inputs")
        tokens = split_tokens(chunk, body.get("prompt_eval_count"))
        return [(decode_embedding(row), n) for row, n in zip(rows, tokens, strict=True)]


def create(settings: EmbeddingSettings, hub: HubSettings) -> OllamaEmbedder:
    """Registry factory: ``settings.url`` defaults to a local Ollama on port 11434."""
    if not settings.url:
        settings = settings.model_copy(update={"url": DEFAULT_URL})
    return OllamaEmbedder(settings)
