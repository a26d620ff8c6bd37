"""The reranker backend contract and the policy above it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from finesift.embedding.instructions import resolve_instruction
from finesift.errors import BackendError, InvalidRequest
from finesift.rerank.prompts import DEFAULT_INSTRUCTION
from finesift.validation import validate_texts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RerankOutput:
    """``scores[i]`` in [0, 1] for document i; prompt tokens per pair; documents truncated."""

    scores: list[float]
    tokens: list[int] = field(default_factory=list)
    truncated: int = 0


@dataclass(frozen=True)
class RankedDocument:
    """One reranked document: its position in the input and its score."""

    index: int
    score: float


@runtime_checkable
class RerankBackend(Protocol):
    """Scores (query, document) pairs: P(document meets the query) in [0, 1]."""

    @property
    def model_id(self) -> str: ...

    @property
    def max_length(self) -> int: ...

    def fingerprint(self) -> dict[str, object]: ...

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        """Scores in input order; ``documents`` is non-empty, every string non-empty."""
        ...


class Reranker:
    """Validated reranking over any :class:`RerankBackend`."""

    def __init__(self, backend: RerankBackend, *, instruction: str | None = None) -> None:
        self.backend = backend
        self.default_instruction = resolve_instruction(instruction, default=DEFAULT_INSTRUCTION)

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        """list[float] in [0, 1], one per document, in input order."""
        return self.score_detailed(query, documents, instruction=instruction).scores

    def score_detailed(
        self, query: str, documents: Sequence[str], *, instruction: str | None = None
    ) -> RerankOutput:
        """Scores plus token usage and truncation counts."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("query must be a non-empty string")
        docs = validate_texts(documents, what="documents")
        if not docs:
            return RerankOutput([], [], 0)
        task = resolve_instruction(instruction, default=self.default_instruction)
        out = self.backend.score(query, docs, instruction=task)
        if len(out.scores) != len(docs):
            raise BackendError(f"the reranker returned {len(out.scores)} scores for {len(docs)} documents")
        if out.truncated:
            log.warning(
                "%d of %d documents were truncated to fit %d tokens",
                out.truncated,
                len(docs),
                self.backend.max_length,
            )
        return out

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        instruction: str | None = None,
    ) -> list[RankedDocument]:
        """Documents sorted by score (highest first, ties by input order), at most ``top_n``."""
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
            raise InvalidRequest(f"top_n must be a positive integer, not {top_n!r}")
        scores = self.score(query, documents, instruction=instruction)
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [RankedDocument(i, scores[i]) for i in ranked[:top_n]]
