"""What the OpenAI and Ollama embedding clients share: the base class, decoding, token accounting.

Neither backend imports the other (an import contract keeps backends independent); both import this.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.errors import BackendError, InvalidRequest
from finesift.runtime.http import HttpClient, RetryPolicy, in_batches
from finesift.settings import EmbeddingSettings

DEFAULT_BATCH_SIZE = 256
DIMENSION_PROBE = "dimension probe"


def resolve_query_format(setting: str, model: str) -> QueryFormat:
    """``auto`` means ``qwen3`` for models whose name says Qwen3, raw queries otherwise."""
    if setting == "auto":
        return "qwen3" if "qwen3" in model.lower() else "none"
    if setting not in ("qwen3", "none"):
        raise InvalidRequest(f"query_format must be auto, qwen3 or none, not {setting!r}")
    return "qwen3" if setting == "qwen3" else "none"


def decode_embedding(value: Any) -> np.ndarray:
    """One embedding from a JSON list of floats or a base64 string of little-endian float32."""
    if isinstance(value, str):
        try:
            return np.frombuffer(base64.b64decode(value), dtype="<f4").astype(np.float32)
        except ValueError as exc:
            raise BackendError("the endpoint returned an embedding that is not valid base64 float32") from exc
    if not isinstance(value, list) or not value:
        raise BackendError("the endpoint returned an embedding that is not a non-empty list of numbers")
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise BackendError("the endpoint returned an embedding with non-numeric values") from exc


def stack_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
    """(n, d) float32 from equally long rows, or a clear error."""
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise BackendError(f"the endpoint returned embeddings of different lengths {sorted(dims)}")
    return np.vstack(rows).astype(np.float32, copy=False)


def split_tokens(texts: Sequence[str], total: int | None) -> list[int]:
    """Per-text token counts when the server only reports a total: shared out by text length.

    Remote servers do not count per input; these numbers are for usage accounting only.
    """
    if not total or total < 0:
        return [0] * len(texts)
    weights = [max(len(t), 1) for t in texts]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    counts[0] += total - sum(counts)
    return counts


class RemoteEmbedderBase:
    """What the OpenAI and Ollama clients share: settings, lazy dimension, fingerprint."""

    pooling = "remote"
    backend_name = "remote"

    def __init__(self, settings: EmbeddingSettings, *, client: HttpClient | None = None) -> None:
        if not settings.url:
            raise InvalidRequest(
                f"the {self.backend_name} backend needs a URL; set --url or FINESIFT_EMBEDDING__URL"
            )
        self.settings = settings
        self.url = self.endpoint(settings.url)
        self.client = client or HttpClient(
            api_key=settings.api_key,
            timeout_s=settings.timeout_s,
            retry=RetryPolicy(max_retries=settings.max_retries),
            extra=self.backend_name,
        )
        self.batch_size = settings.batch_size or DEFAULT_BATCH_SIZE
        self._query_format = resolve_query_format(settings.query_format, settings.model)
        self._dimension: int | None = None

    def endpoint(self, url: str) -> str:
        raise NotImplementedError

    @property
    def model_id(self) -> str:
        return self.settings.model

    @property
    def dimension(self) -> int:
        """The endpoint's vector size, learnt from one probe request on first use."""
        if self._dimension is None:
            self._dimension = int(self.embed([DIMENSION_PROBE]).vectors.shape[1])
        return self._dimension

    @property
    def max_length(self) -> int:
        return self.settings.max_length

    @property
    def query_format(self) -> QueryFormat:
        return self._query_format

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.settings.model,
            "revision": self.settings.revision or "remote",
            "dimension": self.dimension,
            "pooling": self.pooling,
            "normalized": True,
            "max_length": self.settings.max_length,
            "tokenizer": "remote",
            "endpoint": self.url,
        }

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        raise InvalidRequest(
            f"the {self.backend_name} backend cannot count tokens locally, so on_overflow='error' is not "
            "available; the server applies its own length limit (use on_overflow='truncate')"
        )

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        pieces = in_batches(list(texts), self.batch_size, self._send)
        vectors = stack_rows([vec for vec, _ in pieces])
        if self._dimension is None:
            self._dimension = int(vectors.shape[1])
        elif vectors.shape[1] != self._dimension:
            raise BackendError(
                f"the endpoint changed its vector size from {self._dimension} to {vectors.shape[1]}"
            )
        return EmbeddingOutput(vectors, [n for _, n in pieces], 0)

    def _send(self, chunk: Sequence[str], offset: int) -> list[tuple[np.ndarray, int]]:
        raise NotImplementedError
