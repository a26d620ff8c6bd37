"""Qwen3-Embedding through transformers: left padding, EOS check, last-token pooling."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from finesift.embedding.local import EOS_TOKEN, Qwen3TokenIds, check_eos
from finesift.hub import resolve_for
from finesift.runtime import hf
from finesift.runtime.batching import plan_batches
from finesift.runtime.local import HFModel
from finesift.runtime.options import EngineOptions
from finesift.settings import EmbeddingSettings, HubSettings

log = logging.getLogger(__name__)
DEFAULT_MAX_LENGTH = 8192
__all__ = ["DEFAULT_MAX_LENGTH", "EOS_TOKEN", "TransformersEmbedder", "check_eos", "create"]


class TransformersEmbedder(HFModel, Qwen3TokenIds):
    """Raw last-token vectors from a Qwen3-Embedding checkpoint (any size)."""

    def __init__(  # noqa: PLR0913 - public keyword arguments kept stable; speed options grouped
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int = DEFAULT_MAX_LENGTH,
        token_budget: int | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        self._open(
            path, model_id=model_id, device=device, dtype=dtype, max_length=max_length, options=options
        )
        self._dimension = int(self.config["hidden_size"])
        self.eos_id = check_eos(self.tokenizer)
        self._compile(self._weights("AutoModel"), token_budget)

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._model_id,
            "revision": self._revision,
            "dimension": self.dimension,
            "pooling": "last_token",
            "normalized": True,
            "max_length": self._max_length,
            "tokenizer": hf.tokenizer_hash(self.path),
        }

    def _vectors(self, rows: list[list[int]]) -> np.ndarray:
        counts = [len(r) for r in rows]
        out = np.zeros((len(rows), self.dimension), dtype=np.float32)
        for batch in plan_batches(counts, token_budget=self.token_budget, packed=self.packed is not None):
            out[batch] = self._forward([rows[i] for i in batch])
        return out

    def _forward(self, rows: list[list[int]]) -> np.ndarray:
        """(n, dim) float32 last-token states; every row ends with its EOS."""
        pooled = self._last_hidden(rows)
        with self._torch.inference_mode():
            return pooled.float().cpu().numpy()


def create(settings: EmbeddingSettings, hub: HubSettings) -> TransformersEmbedder:
    """Registry factory: resolve the model through the hub, then load it."""
    path = resolve_for(settings, hub)
    return TransformersEmbedder(
        path,
        model_id=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        max_length=settings.max_length,
        token_budget=settings.token_budget,
        options=EngineOptions(
            attention=settings.attention,
            quantize=settings.quantize,
            forward=settings.forward,
            fuse=settings.fuse,
        ),
    )
