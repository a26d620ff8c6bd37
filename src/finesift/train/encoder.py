"""The model being trained, reached through the same embedder finesift runs at inference.

``load_embedder`` builds the backend (``transformers`` for Qwen3-Embedding, ``sentence-transformers``
for other models); training runs the backend's own torch module with gradients, so queries are
formatted by ``Embedder.format`` (the instruction exactly as at inference), Qwen3 rows are tokenized
by the backend (``<|endoftext|>`` kept last, left padding, last-token pooling), and sentence-transformers
models use their own module pipeline (pooling, normalisation). Negative mining calls the embedder
itself, so it sees the current weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from finesift.embedding.embedder import Embedder
from finesift.errors import InvalidRequest
from finesift.runtime.batching import left_pad

if TYPE_CHECKING:
    from finesift.settings import HubSettings


@dataclass
class TrainableEncoder:
    """An :class:`Embedder` plus the differentiable forward of its backend's module."""

    embedder: Embedder
    kind: str  # "qwen3" | "sentence-transformers"
    device: str
    #: The peft wrapper around the transformers module once LoRA is applied (None: full fine-tuning).
    adapted: Any = None

    @property
    def backend(self) -> Any:
        return self.embedder.backend

    @property
    def core(self) -> Any:
        """The module whose weights are trained: the peft wrapper under LoRA, else the transformers model."""
        if self.adapted is not None:
            return self.adapted
        if self.kind == "qwen3":
            return self.backend.model
        return self.backend.model[0].auto_model

    def adapt(self, wrapper: Any) -> None:
        """Train through ``wrapper`` (peft injects its layers into the module in place).

        The wrapper is kept here, not assigned into the sentence-transformers pipeline: from
        sentence-transformers 6 on, ``auto_model`` is a read-only property, and torch's ``__setattr__``
        would register the wrapper as a second submodule, so saving would find the bare module again
        (no peft wrapper, LoRA unmerged: the base weights plus ``lora_A``/``lora_B`` keys).
        """
        self.adapted = wrapper
        if self.kind == "qwen3":
            self.backend.model = wrapper

    @property
    def modules(self) -> Any:
        """The module holding every parameter the forward uses (for train/eval mode)."""
        return self.backend.model

    def format_queries(self, texts: Sequence[str], instruction: str | None) -> list[str]:
        return self.embedder.format(texts, input_type="query", instruction=instruction)

    def forward(self, texts: Sequence[str]) -> Any:
        """(n, d) un-normalised embeddings with gradients (the loss normalises)."""
        if self.kind == "qwen3":
            import torch

            ids, _, _ = self.backend.tokenize(list(texts))
            padded, mask = left_pad(ids, self.backend.tokenizer.pad_token_id)
            out = self.core(
                input_ids=torch.tensor(padded, device=self.device),
                attention_mask=torch.tensor(mask, device=self.device),
                use_cache=False,
            )
            return out.last_hidden_state[:, -1]
        model = self.backend.model
        prepare = getattr(model, "preprocess", None) or model.tokenize  # preprocess from ST 6 on
        features = prepare(list(texts))
        features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
        return model(features)["sentence_embedding"]

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in backward (transformers >= 5.24 names it activation checkpointing)."""
        core = self.core
        enable_checkpointing(core.get_base_model() if hasattr(core, "get_base_model") else core)


def enable_checkpointing(module: Any) -> None:
    """Recompute ``module``'s activations in backward, under the name the installed transformers uses
    (``activation_checkpointing_enable`` from 5.24, where the old name is deprecated)."""
    if not getattr(module, "supports_gradient_checkpointing", False):
        return
    kwargs = {"use_reentrant": False}
    if hasattr(module, "activation_checkpointing_enable"):
        module.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:  # older transformers
        module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if hasattr(module, "enable_input_require_grads"):
        module.enable_input_require_grads()


def open_encoder(
    model: str, *, device: str, max_length: int, instruction: str | None, hub: HubSettings
) -> TrainableEncoder:
    """Load ``model`` in fp32 (the master weights) with finesift's own backend choice, from ``hub``."""
    from finesift.embedding.registry import create_backend
    from finesift.settings import EmbeddingSettings

    # forward="transformers": the packed CPU forward reads the weights its own way, not through LoRA
    settings = EmbeddingSettings(
        model=model,
        device=device,
        dtype="float32",
        max_length=max_length,
        instruction=instruction,
        forward="transformers",
    )
    embedder = Embedder(create_backend(settings, hub), instruction=instruction)
    backend = embedder.backend
    name = type(backend).__name__
    if name == "TransformersEmbedder":
        kind = "qwen3"
    elif name == "SentenceTransformersEmbedder":
        kind = "sentence-transformers"
    else:
        raise InvalidRequest(
            f"{model!r} loads with the {name} backend, which cannot be trained; pass a local "
            "Qwen3-Embedding or sentence-transformers model directory"
        )
    return TrainableEncoder(embedder, kind, str(getattr(backend, "device", "cpu")))
