"""What local embedding backends share: the Protocol's properties and Qwen3's token handling.

:class:`LocalEmbedder` answers ``model_id``, ``dimension``, ``max_length`` and ``query_format``
from what the loader set. :class:`Qwen3TokenIds` adds the Qwen3-Embedding tokenizer contract
(every text ends with ``<|endoftext|>``; truncation keeps it last) and runs from token ids, so a
request planned by :class:`~finesift.embedding.Embedder` is tokenized once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.errors import BackendError
from finesift.runtime.local import LocalModel

EOS_TOKEN = "<|endoftext|>"


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


class LocalEmbedder(LocalModel):
    """The :class:`~finesift.embedding.base.EmbeddingBackend` properties, from loader attributes."""

    _dimension: int
    _query_format: QueryFormat = "qwen3"

    @property
    def dimension(self) -> int:
        """Full output dimension (hidden size)."""
        return self._dimension

    @property
    def query_format(self) -> QueryFormat:
        """Whether queries take the Qwen3 instruction."""
        return self._query_format


class Qwen3TokenIds(LocalEmbedder):
    """Qwen3-Embedding tokenization: EOS-terminated ids, truncation that keeps the EOS last.

    Subclasses set ``tokenizer`` and ``eos_id`` and implement :meth:`_vectors`.
    """

    tokenizer: Any
    eos_id: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.token_ids(texts)]

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
            ids.append(list(row))
        return ids, [len(r) for r in ids], truncated

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int], int]:
        """Token ids truncated to max_length with the EOS kept last; their lengths; truncations."""
        return self.truncate(self.token_ids(texts))

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        return self.embed_ids(self.token_ids(texts))

    def embed_ids(self, rows: Sequence[list[int]]) -> EmbeddingOutput:
        ids, counts, truncated = self.truncate(rows)
        if not ids:
            return EmbeddingOutput(np.zeros((0, self.dimension), dtype=np.float32), [], 0)
        return EmbeddingOutput(self._vectors(ids), counts, truncated)

    def _vectors(self, rows: list[list[int]]) -> np.ndarray:
        """(n, dimension) float32 last-token states of rows that fit the window."""
        raise NotImplementedError
