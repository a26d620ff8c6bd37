"""The models a doctor run checks, as every other command reads them: aliases resolved, and the token
limit taken from the model when not set (a MiniLM directory reads 512 tokens, not the Qwen3 8192)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finesift.embedding.registry import choose_backend
from finesift.embedding.sentence_transformers import (
    is_sentence_transformers_model,
    read_json,
    resolve_alias,
)
from finesift.hub import is_local
from finesift.settings import ModelSettings, Settings

#: A limit above this is "no limit" (tokenizers write 1e30 when they have none).
_UNLIMITED = 10_000_000


def prepared(settings: Settings) -> Settings:
    """``settings`` with each model's alias resolved and its ``max_length`` fitted to the model."""
    update = {role: _fitted(getattr(settings, role)) for role in ("embedding", "reranker")}
    return settings.model_copy(update=update)


def _fitted(section: ModelSettings) -> ModelSettings:
    model = resolve_alias(section.model)
    max_length = section.max_length
    limit = model_limit(Path(model).expanduser()) if is_local(model) else None
    declared = type(section).model_fields["max_length"].default
    if limit is not None and max_length == declared and limit < max_length:
        max_length = limit  # the declared default is Qwen3's; an explicit value is checked as given
    return section.model_copy(update={"model": model, "max_length": max_length})


def model_limit(path: Path) -> int | None:
    """Tokens the model at ``path`` reads: the least of its config's, tokenizer's and pipeline's limits."""
    found: list[Any] = [
        read_json(path / "config.json").get("max_position_embeddings"),
        read_json(path / "tokenizer_config.json").get("model_max_length"),
        read_json(path / "sentence_bert_config.json").get("max_seq_length"),
    ]
    limits = [int(v) for v in found if isinstance(v, int | float) and 16 <= v < _UNLIMITED]
    return min(limits) if limits else None


def reference_backend(section: ModelSettings) -> str:
    """The backend of the float32 stand-in reference for a model without a Qwen3 model card."""
    return "sentence-transformers" if is_sentence_transformers_model(section.model) else "transformers"


def auto_backends(backends: tuple[str, ...], section: Any) -> tuple[str, ...]:
    """``auto`` in ``--backends`` is the backend finesift chooses for the embedding model."""
    chosen = choose_backend(section.model_copy(update={"backend": "auto"}))
    return tuple(dict.fromkeys(chosen if name == "auto" else name for name in backends))
