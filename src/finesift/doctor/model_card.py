"""The doctor's reference: the Qwen3 model cards' own code (:mod:`finesift.runtime.model_card`) in float32.

A green row means "agrees with what the model card computes for this checkpoint", not "agrees with
another finesift backend". The adapters below give the card's code the few methods the probe calls
(``encode``, ``embed_queries``, ``score_detailed``...); they format nothing themselves: the query text is
the card's ``get_detailed_instruct(task, query)`` and the reranker's pair its ``format_instruction``, with
the card's default task. Only a named instruction (``code_search``) is looked up in finesift's table.

A failing row is diagnosed by replaying known bugs on finesift's transformers backend of the same
checkpoint (:mod:`finesift.doctor.faults` needs its tokenizer and forward); that backend is built only
when a row fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.instructions import resolve_instruction
from finesift.errors import InvalidRequest, MissingDependency

LABEL = "model card (transformers float32)"


@dataclass(frozen=True)
class CardEncoding:
    """What the probe reads from an encode call: (n, d) float32 L2-normalised rows and the tokens used."""

    vectors: np.ndarray
    total_tokens: int


@dataclass(frozen=True)
class CardScores:
    """P(yes) per document and the tokens of each (prefix + pair + suffix)."""

    scores: list[float]
    tokens: list[int]


def is_qwen3(path: Path) -> bool:
    """Whether the checkpoint is a Qwen3 model, the architecture the model cards describe."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return str(config.get("model_type", "")).lower() == "qwen3"


def _card_module() -> Any:
    try:
        from finesift.runtime import model_card
        from finesift.runtime.device import torch_device_and_dtype
    except ImportError as exc:  # torch or transformers missing
        raise MissingDependency(exc.name or "torch", "transformers", "the model-card reference") from exc
    return model_card, torch_device_and_dtype


class CardEmbedder:
    """The Qwen3-Embedding model card's code in float32, behind the probe's embedder methods."""

    def __init__(
        self, path: Path, *, instruction: str | None, max_length: int, device: str, replay: Callable[[], Any]
    ) -> None:
        card, device_and_dtype = _card_module()
        dev, fp32 = device_and_dtype(device, "float32")
        self.card = card.ReferenceEmbedder(str(path), dtype=fp32, max_length=max_length, device=dev)
        self._instruct = card.get_detailed_instruct
        self.default_instruction = resolve_instruction(instruction, default=card.DEFAULT_TASK)
        self._replay, self._backend = replay, None

    @property
    def dimension(self) -> int:
        return int(self.card.model.config.hidden_size)

    @property
    def backend(self) -> Any:
        """finesift's transformers backend of the same checkpoint, for replaying faults (built once)."""
        if self._backend is None:
            self._backend = self._replay()
        return self._backend

    def encode(
        self,
        texts: Sequence[str],
        *,
        input_type: str,
        instruction: str | None = None,
        dim: int | None = None,
    ) -> CardEncoding:
        if not texts:
            raise InvalidRequest("nothing to embed")
        if input_type == "query":
            task = resolve_instruction(instruction, default=self.default_instruction)
            texts = [self._instruct(task, t) for t in texts]
        ids = self.card.tokenizer(list(texts), truncation=True, max_length=self.card.max_length)["input_ids"]
        vectors = np.asarray(self.card.embed(list(texts), dim=dim), dtype=np.float32)
        return CardEncoding(vectors, sum(len(row) for row in ids))

    def embed_queries(
        self, texts: Sequence[str], instruction: str | None = None, dim: int | None = None
    ) -> np.ndarray:
        return self.encode(texts, input_type="query", instruction=instruction, dim=dim).vectors

    def embed_documents(self, texts: Sequence[str], dim: int | None = None) -> np.ndarray:
        return self.encode(texts, input_type="document", dim=dim).vectors


class CardReranker:
    """The Qwen3-Reranker model card's code in float32, behind the probe's reranker methods."""

    def __init__(
        self, path: Path, *, instruction: str | None, max_length: int, device: str, replay: Callable[[], Any]
    ) -> None:
        card, device_and_dtype = _card_module()
        dev, fp32 = device_and_dtype(device, "float32")
        self.card = card.ReferenceReranker(str(path), dtype=fp32, max_length=max_length, device=dev)
        self.default_instruction = resolve_instruction(instruction, default=card.DEFAULT_TASK)
        self._replay, self._backend = replay, None

    @property
    def backend(self) -> Any:
        """finesift's transformers backend of the same checkpoint, for replaying faults (built once)."""
        if self._backend is None:
            self._backend = self._replay()
        return self._backend

    def score_detailed(
        self, query: str, documents: Sequence[str], *, instruction: str | None = None
    ) -> CardScores:
        task = resolve_instruction(instruction, default=self.default_instruction)
        pairs = [self.card.format_instruction(task, query, doc) for doc in documents]
        inputs = self.card.process_inputs(pairs)
        tokens = [int(n) for n in inputs["attention_mask"].sum(dim=1).tolist()]
        return CardScores([float(s) for s in self.card.compute_logits(inputs)], tokens)

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        return self.score_detailed(query, documents, instruction=instruction).scores
