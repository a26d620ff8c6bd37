"""The embedding backend contract.

A backend turns already formatted texts into raw pooled vectors, row i for text i. It applies no
instruction, no Matryoshka slicing and no normalisation: :class:`finesift.embedding.Embedder` does
that once, above every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

#: How queries are formatted for this model: Qwen3's instruction template, or raw text.
QueryFormat = Literal["qwen3", "none"]


@dataclass(frozen=True)
class EmbeddingOutput:
    """Raw vectors: ``vectors`` is (n, hidden) float32; ``tokens[i]`` the tokens text i used."""

    vectors: np.ndarray
    tokens: list[int] = field(default_factory=list)
    truncated: int = 0


@runtime_checkable
class EmbeddingBackend(Protocol):
    """Turns formatted texts into raw (unnormalised) pooled vectors."""

    @property
    def model_id(self) -> str:
        """The model's name or path, as given by the user."""
        ...

    @property
    def dimension(self) -> int:
        """Full output dimension (hidden size)."""
        ...

    @property
    def max_length(self) -> int:
        """Tokens per text after which the backend truncates."""
        ...

    @property
    def query_format(self) -> QueryFormat:
        """Whether queries take the Qwen3 instruction."""
        ...

    def fingerprint(self) -> dict[str, object]:
        """What determines the vectors: model, revision, pooling, dtype, tokenizer; JSON-safe."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Untruncated token counts, special tokens included."""
        ...

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        """Raw pooled vectors for ``texts`` (non-empty strings), in input order."""
        ...


@runtime_checkable
class TokenizingBackend(EmbeddingBackend, Protocol):
    """A backend that tokenizes locally and can run from token ids, so a request is tokenized once."""

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Untruncated token ids per text, special tokens included."""
        ...

    def embed_ids(self, rows: Sequence[list[int]]) -> EmbeddingOutput:
        """Raw pooled vectors for ``token_ids`` rows; rows over ``max_length`` are truncated here."""
        ...
