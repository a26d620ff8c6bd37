"""A sentence-transformers ``CrossEncoder`` from a local directory, as a reranker backend.

Scores are ``sigmoid(logit)`` of the model's single output, so they lie in [0, 1] whatever
activation the checkpoint's config names (the order is the model's own). Cross-encoders take no
instruction; the one the policy passes is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.sentence_transformers import (
    choose_dtype,
    import_sentence_transformers,
    is_sentence_transformers_model,
    read_json,
)
from finesift.errors import BackendError, InvalidRequest
from finesift.hub import resolve_for
from finesift.rerank.base import RerankOutput
from finesift.runtime import hf
from finesift.runtime.batching import default_token_budget
from finesift.runtime.device import resolve_device
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
    return is_sentence_transformers_model(str(path))


def is_causal_lm(path: Path) -> bool:
    """True when the checkpoint is a ``*ForCausalLM`` (Qwen3-Reranker answers yes/no as an LM)."""
    architectures = read_json(Path(path) / "config.json").get("architectures") or []
    return any(str(a).endswith("ForCausalLM") for a in architectures)


class CrossEncoderReranker:
    """P(relevant) = sigmoid(logit) from a one-label cross-encoder."""

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
        st = import_sentence_transformers()
        torch, _ = hf.import_torch_stack()
        self.path = Path(path)
        self._model_id = model_id or str(path)
        self.device = resolve_device(device, cuda_available=torch.cuda.is_available())
        self.dtype = choose_dtype(dtype, device=self.device, config=hf.read_config(self.path))
        self.model = _load(st.CrossEncoder, self.path, self.device, getattr(torch, self.dtype))
        if self.model.num_labels != 1:
            raise BackendError(
                f"{path} is a cross-encoder with {self.model.num_labels} labels; a reranker needs exactly one"
            )
        # sentence-transformers 6 calls it max_seq_length, 5 max_length.
        limit = "max_seq_length" if hasattr(self.model, "max_seq_length") else "max_length"
        model_max = int(getattr(self.model, limit) or DEFAULT_MAX_LENGTH)
        self._max_length = min(max_length, model_max) if max_length else model_max
        setattr(self.model, limit, self._max_length)
        self.batch_size = max(1, (token_budget or default_token_budget(self.device)) // self._max_length)
        self._identity = torch.nn.Identity()
        self._revision = hf.revision_of(self.path)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def max_length(self) -> int:
        return self._max_length

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


def _load(cls: Any, path: Path, device: str, dtype: Any) -> Any:
    hf.check_weights(path)
    try:
        return cls(
            str(path),
            device=device,
            local_files_only=True,
            trust_remote_code=False,
            model_kwargs={"dtype": dtype},
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise BackendError(f"cannot load the cross-encoder from {path}: {exc}") from exc


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
