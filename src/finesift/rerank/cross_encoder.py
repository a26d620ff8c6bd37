"""A sentence-transformers ``CrossEncoder`` from a local directory, as a reranker backend.

Scores are ``sigmoid(logit)`` of the model's single output, so they lie in [0, 1] whatever
activation the checkpoint's config names (the order is the model's own). Cross-encoders take no
instruction; the one the policy passes is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from finesift.errors import BackendError, InvalidRequest
from finesift.hub import resolve_for
from finesift.rerank.base import RerankOutput
from finesift.runtime import hf
from finesift.runtime.st import STModel, is_st_directory, read_json
from finesift.settings import HubSettings, RerankSettings

DEFAULT_MAX_LENGTH = 512


def is_cross_encoder_model(model: str) -> bool:
    """True for a local sequence-classification checkpoint or a sentence-transformers directory."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return False
    architectures = read_json(path / "config.json").get("architectures") or []
    if any(str(a).endswith("ForSequenceClassification") for a in architectures):
        return True
    return is_st_directory(path)


def is_causal_lm(path: Path) -> bool:
    """True when the checkpoint is a ``*ForCausalLM`` (Qwen3-Reranker answers yes/no as an LM)."""
    architectures = read_json(Path(path) / "config.json").get("architectures") or []
    return any(str(a).endswith("ForCausalLM") for a in architectures)


class CrossEncoderReranker(STModel):
    """P(relevant) = sigmoid(logit) from a one-label cross-encoder."""

    kind = "cross-encoder"

    def __init__(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int | None = None,
        token_budget: int | None = None,
    ) -> None:
        self.model = self._load(
            path,
            "CrossEncoder",
            model_id=model_id,
            device=device,
            dtype=dtype,
            max_length=max_length,
            default_max_length=DEFAULT_MAX_LENGTH,
        )
        if self.model.num_labels != 1:
            raise BackendError(
                f"{path} is a cross-encoder with {self.model.num_labels} labels; a reranker needs exactly one"
            )
        self.batch_size = self._batch_size(token_budget)
        self._identity = hf.import_torch_stack()[0].nn.Identity()

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._model_id,
            "revision": self._revision,
            "prompt": "cross-encoder",
            "library": "sentence-transformers",
            "dtype": self.dtype,
            "max_length": self._max_length,
            "tokenizer": hf.tokenizer_hash(self.path),
        }

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        pairs = [(query, doc) for doc in documents]
        counts = [
            len(ids) for ids in self.model.tokenizer([query] * len(documents), list(documents))["input_ids"]
        ]
        logits = self.model.predict(
            pairs,
            batch_size=self.batch_size,
            activation_fn=self._identity,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        scores = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64).reshape(len(pairs))))
        truncated = sum(1 for n in counts if n > self._max_length)
        return RerankOutput([float(s) for s in scores], [min(n, self._max_length) for n in counts], truncated)


def create(settings: RerankSettings, hub: HubSettings) -> CrossEncoderReranker:
    """Registry factory: resolve the model, then load it with sentence-transformers."""
    path = resolve_for(settings, hub)
    if is_causal_lm(path):
        raise InvalidRequest(
            f"{settings.model} is a causal language model (like Qwen3-Reranker), not a cross-encoder; "
            "sentence-transformers' CrossEncoder cannot score it. Use the transformers backend."
        )
    return CrossEncoderReranker(
        path,
        model_id=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        max_length=settings.max_length,
        token_budget=settings.token_budget,
    )
