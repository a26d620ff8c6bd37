"""Any OpenAI-compatible ``/v1/embeddings`` endpoint: vLLM, TEI, llama-server, hosted APIs, finesift.

The backend sends already formatted texts (the Qwen3 query instruction is applied client-side by
:class:`~finesift.embedding.Embedder` when ``query_format`` is ``qwen3``) and returns the vectors as
the server sent them, in input order by ``index``: no normalisation, no slicing here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finesift.embedding.remote import RemoteEmbedderBase, decode_embedding, split_tokens
from finesift.errors import BackendError
from finesift.runtime.http import endpoint_url, ordered_by_index


class OpenAIEmbedder(RemoteEmbedderBase):
    """Raw vectors from an OpenAI-compatible ``/v1/embeddings`` endpoint."""

    backend_name = "openai"

    def endpoint(self, url: str) -> str:
        return endpoint_url(url, "/v1/embeddings")

    def _send(self, chunk: Sequence[str], offset: int) -> list[tuple[np.ndarray, int]]:
        payload = {"model": self.settings.model, "input": list(chunk), "encoding_format": "float"}
        body = self.client.post_json(self.url, payload)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise BackendError(
                f"{self.url} answered without a 'data' list; is it an OpenAI embeddings endpoint?"
            )
        rows = ordered_by_index(data, len(chunk), what="embedding")
        usage = body.get("usage") or {}
        tokens = split_tokens(chunk, usage.get("prompt_tokens") if isinstance(usage, dict) else None)
        return [(decode_embedding(row.get("embedding")), n) for row, n in zip(rows, tokens, strict=True)]
