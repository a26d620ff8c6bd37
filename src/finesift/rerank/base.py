"""The reranker backend contract and the request pipeline above it: plan -> run -> finish.

:meth:`Reranker.plan` validates the query and documents and resolves the instruction;
:meth:`Reranker.run` calls the backend (the server runs it from its queue); :meth:`Reranker.finish`
checks the scores and ranks them. Library, CLI, server and eval call these same steps.
"""

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


@dataclass(frozen=True)
class RerankInfo:
    """What a served reranker is: id, tokens per (query, document) pair, default instruction."""

    model_id: str
    max_length: int
    instruction: str
    #: The backend class, e.g. ``TransformersReranker``.
    backend: str


@dataclass(frozen=True)
class RerankPlan:
    """A validated request ready to run: the query, its documents and the resolved instruction."""

    query: str
    documents: list[str]
    instruction: str
    top_n: int | None = None


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
    def info(self) -> RerankInfo:
        """The model's id, window per pair and default instruction."""
        backend = self.backend
        return RerankInfo(
            model_id=backend.model_id,
            max_length=backend.max_length,
            instruction=self.default_instruction,
            backend=type(backend).__name__,
        )

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def warm_up(self) -> None:
        """Pay one-time costs now (the packed CPU forward's kernel compile); a no-op for most backends."""
        warm_up = getattr(self.backend, "warm_up", None)
        if callable(warm_up):
            warm_up()

    def plan(
        self,
        query: str,
        documents: Sequence[str],
        *,
        instruction: str | None = None,
        top_n: int | None = None,
    ) -> RerankPlan:
        """Validate the query, documents and ``top_n``; resolve the instruction. Runs nothing."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("query must be a non-empty string")
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
            raise InvalidRequest(f"top_n must be a positive integer, not {top_n!r}")
        docs = validate_texts(documents, what="documents")
        task = resolve_instruction(instruction, default=self.default_instruction)
        return RerankPlan(query, docs, task, top_n)

    def run(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        """Backend scores for validated documents (any slice of a plan's), checked for count."""
        if not documents:
            return RerankOutput([], [], 0)
        out = self.backend.score(query, documents, instruction=instruction)
        if len(out.scores) != len(documents):
            raise BackendError(
                f"the reranker returned {len(out.scores)} scores for {len(documents)} documents"
            )
        if out.truncated:
            log.warning(
                "%d of %d documents were truncated to fit %d tokens",
                out.truncated,
                len(documents),
                self.backend.max_length,
            )
        return out

    def finish(self, plan: RerankPlan, scores: Sequence[float]) -> list[RankedDocument]:
        """Documents sorted by score (highest first, ties by input order), at most ``plan.top_n``."""
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [RankedDocument(i, float(scores[i])) for i in ranked[: plan.top_n]]

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        """list[float] in [0, 1], one per document, in input order."""
        return self.score_detailed(query, documents, instruction=instruction).scores

    def score_detailed(
        self, query: str, documents: Sequence[str], *, instruction: str | None = None
    ) -> RerankOutput:
        """Scores plus token usage and truncation counts."""
        plan = self.plan(query, documents, instruction=instruction)
        return self.run(plan.query, plan.documents, instruction=plan.instruction)

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        instruction: str | None = None,
    ) -> list[RankedDocument]:
        """Documents sorted by score (highest first, ties by input order), at most ``top_n``."""
        plan = self.plan(query, documents, instruction=instruction, top_n=top_n)
        return self.finish(plan, self.run(plan.query, plan.documents, instruction=plan.instruction).scores)
