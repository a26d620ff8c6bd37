"""A deterministic, dependency-free embedder for tests, demos and the server's test surface.

Vectors are signed feature hashes of the words (and CJK bigrams), so texts that share words are
close. It formats queries like Qwen3 (the instruction is applied), which lets tests observe that.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.errors import InvalidRequest
from finesift.fakes import bucket, count_tokens, features
from finesift.settings import EmbeddingSettings, HubSettings

DEFAULT_DIM = 64


class FakeEmbedder:
    """Signed feature hashing into ``dimension`` buckets; a constant keeps vectors non-zero."""

    def __init__(self, dimension: int = DEFAULT_DIM, *, max_length: int = 8192) -> None:
        if dimension < 32:
            raise InvalidRequest("the fake embedder needs dimension >= 32")
        self._dimension = dimension
        self._max_length = max_length
        self.calls = 0
        self.texts_embedded = 0

    @property
    def model_id(self) -> str:
        return f"fake:{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def query_format(self) -> QueryFormat:
        return "qwen3"

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.model_id,
            "revision": "1",
            "dimension": self._dimension,
            "pooling": "hash",
            "normalized": True,
            "max_length": self._max_length,
            "tokenizer": "fake",
        }

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return count_tokens(list(texts))

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        counts, truncated = [], 0
        for row, text in enumerate(texts):
            feats = features(text)
            if len(feats) + 1 > self._max_length:
                feats, truncated = feats[: self._max_length - 1], truncated + 1
            out[row, 0] = 0.5
            for feat in feats:
                index, sign = bucket(feat, self._dimension)
                out[row, index] += sign
            counts.append(len(feats) + 1)
        return EmbeddingOutput(out, counts, truncated)


def create(settings: EmbeddingSettings, hub: HubSettings) -> FakeEmbedder:
    """Registry factory: model ``fake`` or ``fake:DIM``."""
    _, _, dim = settings.model.partition(":")
    if dim and not dim.isdigit():
        raise InvalidRequest(f"fake embedder model must be 'fake' or 'fake:DIM', not {settings.model!r}")
    return FakeEmbedder(int(dim) if dim else DEFAULT_DIM, max_length=settings.max_length)
