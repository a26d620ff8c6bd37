"""Qwen3-Embedding through transformers: left padding, EOS check, last-token pooling."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.errors import BackendError
from finesift.hub import resolve_for
from finesift.runtime import forward, hf
from finesift.runtime.batching import default_token_budget, plan_batches
from finesift.runtime.options import EngineOptions
from finesift.settings import EmbeddingSettings, HubSettings

log = logging.getLogger(__name__)
EOS_TOKEN = "<|endoftext|>"
DEFAULT_MAX_LENGTH = 8192


def check_eos(tokenizer: Any) -> int:
    """The id the tokenizer appends to every text; it must be ``<|endoftext|>``."""
    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    probe = tokenizer("finesift probe")["input_ids"]
    if eos_id is None or not probe or probe[-1] != eos_id:
        raise BackendError(
            "the tokenizer does not append <|endoftext|> to each text, so last-token pooling would read the "
            "wrong token and the vectors would be wrong. Use the official Qwen3-Embedding tokenizer.json "
            "(its post-processor appends <|endoftext|>)."
        )
    return int(eos_id)


class TransformersEmbedder:
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
        torch, transformers = hf.import_torch_stack()
        self.options = options or EngineOptions()
        self.path = Path(path)
        self.config = hf.read_config(self.path)
        self._max_length = hf.check_max_length(max_length, self.config)
        self._model_id = model_id or str(path)
        self.device, self.torch_dtype, self.attention = hf.placement(device, dtype, self.options)
        self.tokenizer = hf.load_tokenizer(self.path)
        self.eos_id = check_eos(self.tokenizer)
        model = hf.load_weights(
            transformers.AutoModel,
            self.path,
            device=self.device,
            dtype=self.torch_dtype,
            attn_implementation=self.attention,
        )
        self.model = hf.maybe_quantize(model, self.options.quantize)
        self.token_budget = token_budget or default_token_budget(self.device)
        self.packed = hf.packed_forward(self.model, self.options, self.device, chunk_tokens=self.token_budget)
        self._torch = torch
        self._revision = hf.revision_of(self.path)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return int(self.config["hidden_size"])

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def query_format(self) -> QueryFormat:
        return "qwen3"

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

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts))["input_ids"]]

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Untruncated ids per text, each ending with the EOS."""
        return [list(row) for row in self.tokenizer(list(texts))["input_ids"]]

    def truncate(self, rows: Sequence[list[int]]) -> tuple[list[list[int]], list[int], int]:
        """Rows cut to max_length with the EOS kept last; their lengths; how many were cut."""
        limit, ids, truncated = self._max_length, [], 0
        for row in rows:
            if len(row) > limit:
                row = [*row[: limit - 1], self.eos_id]
                truncated += 1
            ids.append(row)
        return ids, [len(r) for r in ids], truncated

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int], int]:
        """Token ids truncated to max_length with the EOS kept last; untruncated counts; truncations."""
        return self.truncate(self.token_ids(texts))

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        return self.embed_ids(self.token_ids(texts))

    def embed_ids(self, rows: Sequence[list[int]]) -> EmbeddingOutput:
        ids, counts, truncated = self.truncate(rows)
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        for batch in plan_batches(counts, token_budget=self.token_budget, packed=self.packed is not None):
            out[batch] = self._forward([ids[i] for i in batch])
        return EmbeddingOutput(out, counts, truncated)

    def _forward(self, rows: list[list[int]]) -> np.ndarray:
        """(n, dim) float32 last-token states; every row ends with its EOS."""
        if self.packed is not None:
            pooled = self.packed.last_hidden(rows)
        elif self.attention == "flash_attention_2":
            pooled = forward.last_hidden_packed(self.model, rows, device=self.device)
        else:
            pooled = forward.last_hidden_padded(
                self.model, rows, pad_id=self.tokenizer.pad_token_id, device=self.device
            )
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
            attention=settings.attention, quantize=settings.quantize, forward=settings.forward
        ),
    )
