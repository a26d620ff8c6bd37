"""The embedding policy that sits above every backend.

It validates input, applies the Qwen3 query instruction, enforces the length policy, and does
Matryoshka slicing then L2 normalisation, so no backend can get those wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from finesift.embedding.base import EmbeddingBackend
from finesift.embedding.instructions import DEFAULT_TASK, format_query, resolve_instruction
from finesift.errors import BackendError, InvalidRequest
from finesift.validation import validate_texts

log = logging.getLogger(__name__)

InputType = Literal["query", "document"]
OverflowPolicy = Literal["truncate", "error"]
MIN_DIM = 32


@dataclass(frozen=True)
class Embeddings:
    """``vectors`` (n, d) float32, L2-normalised; token counts per text; how many were truncated."""

    vectors: np.ndarray
    tokens: list[int]
    truncated: int

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)


def validate_dim(dim: object, full: int) -> int:
    """The Matryoshka dimension: ``None`` means full; otherwise an int in 32..full."""
    if dim is None:
        return full
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise InvalidRequest(f"dim must be an integer in {MIN_DIM}..{full}, not {dim!r}")
    if not MIN_DIM <= int(dim) <= full:
        raise InvalidRequest(f"dim {dim} is out of range; this model supports {MIN_DIM}..{full}")
    return int(dim)


def slice_and_normalise(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Matryoshka: keep the first ``dim`` values, then L2-normalise each row (slice first)."""
    head = np.asarray(vectors[:, :dim], dtype=np.float32)
    norms = np.linalg.norm(head, axis=1, keepdims=True)
    if not np.all(np.isfinite(head)) or np.any(norms == 0):
        raise BackendError(
            "the model produced a non-finite or all-zero vector; check the model files and dtype"
        )
    return np.ascontiguousarray(head / norms, dtype=np.float32)


class Embedder:
    """Qwen3-faithful embeddings over any :class:`EmbeddingBackend`."""

    def __init__(
        self,
        backend: EmbeddingBackend,
        *,
        instruction: str | None = None,
        on_overflow: OverflowPolicy = "truncate",
    ) -> None:
        self.backend = backend
        self.default_instruction = resolve_instruction(instruction, default=DEFAULT_TASK)
        if on_overflow not in ("truncate", "error"):
            raise InvalidRequest(f"on_overflow must be 'truncate' or 'error', not {on_overflow!r}")
        self.on_overflow: OverflowPolicy = on_overflow

    @property
    def dimension(self) -> int:
        return self.backend.dimension

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def fingerprint(self) -> dict[str, object]:
        """The backend's fingerprint plus the query policy."""
        return {
            **self.backend.fingerprint(),
            "query_format": self.backend.query_format,
            "instruction": self.default_instruction,
        }

    def embed_queries(
        self, texts: Sequence[str], instruction: str | None = None, dim: int | None = None
    ) -> np.ndarray:
        """(n, d) float32, L2-normalised; queries carry the instruction."""
        return self.encode(texts, input_type="query", instruction=instruction, dim=dim).vectors

    def embed_documents(self, texts: Sequence[str], dim: int | None = None) -> np.ndarray:
        """(n, d) float32, L2-normalised; documents are embedded raw."""
        return self.encode(texts, input_type="document", dim=dim).vectors

    def format(
        self, texts: Sequence[str], *, input_type: InputType, instruction: str | None = None
    ) -> list[str]:
        """The exact strings the model sees."""
        if input_type not in ("query", "document"):
            raise InvalidRequest(f"input_type must be 'query' or 'document', not {input_type!r}")
        if input_type == "document" or self.backend.query_format == "none":
            return list(texts)
        task = resolve_instruction(instruction, default=self.default_instruction)
        return [format_query(t, task) for t in texts]

    def encode(
        self,
        texts: Sequence[str],
        *,
        input_type: InputType,
        instruction: str | None = None,
        dim: int | None = None,
        on_overflow: OverflowPolicy | None = None,
    ) -> Embeddings:
        """Validated, formatted, length-checked, sliced and normalised embeddings."""
        items = validate_texts(texts)
        size = validate_dim(dim, self.backend.dimension)
        formatted = self.format(items, input_type=input_type, instruction=instruction)
        if not formatted:
            return Embeddings(np.zeros((0, size), dtype=np.float32), [], 0)
        if (on_overflow or self.on_overflow) == "error":
            self._refuse_overlong(formatted)
        out = self.backend.embed(formatted)
        if out.truncated:
            log.warning(
                "%d of %d texts exceeded %d tokens and were truncated",
                out.truncated,
                len(formatted),
                self.backend.max_length,
            )
        return Embeddings(slice_and_normalise(out.vectors, size), list(out.tokens), out.truncated)

    def _refuse_overlong(self, formatted: list[str]) -> None:
        limit = self.backend.max_length
        counts = self.backend.count_tokens(formatted)
        over = [i for i, n in enumerate(counts) if n > limit]
        if over:
            raise InvalidRequest(
                f"{len(over)} text(s) exceed the {limit}-token limit (first: index {over[0]}, "
                f"{counts[over[0]]} tokens); shorten them, raise max_length, or allow truncation"
            )
