"""Embedding and rerank for the server: the library's pipeline around the shared batch queue.

Each request goes through the model's own ``plan`` (validate, format, tokenize once, overflow
policy), the queue (cross-request batches of planned inputs, run by the model's ``run``), then
``finish`` (Matryoshka slice-then-normalise, or ranking). What this module adds is only the server's
own: admission limits from :class:`ServerSettings`, the HTTP-to-library name mapping, metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from finesift.embedding.base import EmbeddingOutput
from finesift.embedding.embedder import Embedder, EmbedPlan, InputType, ModelInput, OverflowPolicy
from finesift.errors import InvalidRequest
from finesift.rerank.base import Reranker, RerankPlan
from finesift.runtime.queue import BatchQueue, QueueLimits
from finesift.server.metrics import Metrics
from finesift.settings import ServerSettings

#: Requests up to this many characters are tokenized on the event loop (well under a millisecond);
#: larger ones in a thread, so that they never stall other requests.
INLINE_PREPARE_CHARS = 4096


def queue_limits(settings: ServerSettings) -> QueueLimits:
    return QueueLimits(
        token_budget=settings.batch_tokens,
        max_items=settings.max_batch_items,
        max_jobs=settings.queue_size,
        timeout=settings.request_timeout,
    )


@dataclass(frozen=True)
class EmbedRequest:
    """An embeddings request in the library's terms (HTTP names are mapped by :func:`embed_request`)."""

    texts: list[str]
    input_type: InputType = "document"
    instruction: str | None = None
    dim: int | None = None
    #: ``None``: the embedder's configured policy (``embedding.on_overflow``).
    on_overflow: OverflowPolicy | None = None


def overflow_policy(truncate: bool | None) -> OverflowPolicy | None:
    """The HTTP ``truncate`` field (OpenAI/TEI style) as the library's ``on_overflow``.

    ``true`` truncates, ``false`` refuses over-long input, absent defers to ``embedding.on_overflow``.
    """
    if truncate is None:
        return None
    return "truncate" if truncate else "error"


def embed_request(
    texts: list[str],
    *,
    input_type: InputType,
    instruction: str | None,
    dimensions: int | None,
    truncate: bool | None,
) -> EmbedRequest:
    """The one place the HTTP field names meet the library's: ``dimensions`` -> ``dim``,
    ``truncate`` -> ``on_overflow``, ``input_type`` -> query/document."""
    return EmbedRequest(texts, input_type, instruction, dimensions, overflow_policy(truncate))


@dataclass(frozen=True)
class EmbedResult:
    """``vectors`` (n, d) float32, L2-normalised; tokens the model read; texts truncated."""

    vectors: np.ndarray
    prompt_tokens: int
    truncated: int


class EmbeddingService:
    """The library's embedding pipeline (plan, run, finish) around a :class:`BatchQueue` shared by all
    requests; this class adds only the server's own limits and metrics."""

    role = "embedding"

    def __init__(self, embedder: Embedder, settings: ServerSettings, metrics: Metrics) -> None:
        self.embedder = embedder
        self.settings = settings
        self.metrics = metrics
        self.queue: BatchQueue[ModelInput, tuple[np.ndarray, int]] = BatchQueue(
            self._run, queue_limits(settings), name=self.role, observer=metrics.observer(self.role)
        )

    def _run(self, key: Hashable, inputs: list[ModelInput]) -> list[tuple[np.ndarray, int]]:
        out = self.embedder.run(inputs)
        tokens = out.tokens or [0] * len(inputs)
        return [(out.vectors[i], tokens[i]) for i in range(len(inputs))]

    def prepare(self, request: EmbedRequest) -> EmbedPlan:
        """The server's limits around the library's plan (tokenized once). Raises :class:`InvalidRequest`."""
        if not request.texts:
            raise InvalidRequest("input must not be empty; send at least one text")
        if len(request.texts) > self.settings.max_inputs:
            raise InvalidRequest(
                f"too many inputs: {len(request.texts)}; at most {self.settings.max_inputs} per request, "
                "split it"
            )
        if request.input_type == "document" and request.instruction is not None:
            raise InvalidRequest(
                'instruction applies to queries; set "input_type": "query" or drop instruction'
            )
        plan = self.embedder.plan(
            request.texts,
            input_type=request.input_type,
            instruction=request.instruction,
            dim=request.dim,
            on_overflow=request.on_overflow,
            count=True,
            what="input",
        )
        total = sum(plan.costs)
        if total > self.settings.max_request_tokens:
            raise InvalidRequest(
                f"the request has {total} tokens, over the limit of {self.settings.max_request_tokens} "
                "per request; split it"
            )
        return plan

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        began = time.perf_counter()
        if sum(len(t) for t in request.texts if isinstance(t, str)) <= INLINE_PREPARE_CHARS:
            plan = self.prepare(request)
        else:
            plan = await asyncio.to_thread(self.prepare, request)
        self.metrics.stage.labels(self.role, "prepare").observe(time.perf_counter() - began)
        rows = await self.queue.submit(None, plan.inputs, plan.costs)
        out = EmbeddingOutput(np.stack([row[0] for row in rows]), [row[1] for row in rows], plan.over)
        result = self.embedder.finish(plan, out)
        self.metrics.tokens.labels(self.role).inc(result.total_tokens)
        self.metrics.items.labels(self.role).inc(len(rows))
        self.metrics.truncated.labels(self.role).inc(result.truncated)
        return EmbedResult(result.vectors, result.total_tokens, result.truncated)


@dataclass(frozen=True)
class Ranked:
    """Documents by score (highest first, ties by input order): (index, score) pairs; prompt tokens."""

    results: list[tuple[int, float]]
    tokens: int


class RerankService:
    """Reranking through a :class:`BatchQueue`; requests with the same query share model calls."""

    role = "rerank"

    def __init__(self, reranker: Reranker, settings: ServerSettings, metrics: Metrics) -> None:
        self.reranker = reranker
        self.settings = settings
        self.metrics = metrics
        self.queue: BatchQueue[str, tuple[float, int]] = BatchQueue(
            self._run, queue_limits(settings), name=self.role, observer=metrics.observer(self.role)
        )

    def _run(self, key: Hashable, documents: list[str]) -> list[tuple[float, int]]:
        query, instruction = cast(tuple[str, str], key)
        out = self.reranker.run(query, documents, instruction=instruction)
        self.metrics.truncated.labels(self.role).inc(out.truncated)
        tokens = out.tokens or [0] * len(documents)
        return list(zip(out.scores, tokens, strict=True))

    def prepare(
        self, query: str, documents: Sequence[str], *, instruction: str | None, top_n: int | None
    ) -> RerankPlan:
        """The server's limits around the library's plan. Raises :class:`InvalidRequest`."""
        if not query.strip():
            raise InvalidRequest("query must not be empty")
        limit = self.settings.max_documents
        if not documents:
            raise InvalidRequest("documents must not be empty; send at least one")
        if len(documents) > limit:
            raise InvalidRequest(
                f"too many documents: {len(documents)}; at most {limit} per request, split the request"
            )
        if top_n is not None and not 1 <= top_n <= limit:
            raise InvalidRequest(f"top_n must be between 1 and {limit}, not {top_n}")
        return self.reranker.plan(query, documents, instruction=instruction, top_n=top_n)

    async def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        instruction: str | None = None,
        top_n: int | None = None,
    ) -> Ranked:
        began = time.perf_counter()
        plan = self.prepare(query, documents, instruction=instruction, top_n=top_n)
        self.metrics.stage.labels(self.role, "prepare").observe(time.perf_counter() - began)
        window = self.reranker.info.max_length
        # A byte-based estimate is enough here: the backend batches by exact token counts itself.
        costs = [min(window, (len(plan.query) + len(d)) // 3 + 1) for d in plan.documents]
        rows = await self.queue.submit((plan.query, plan.instruction), plan.documents, costs)
        ranked = self.reranker.finish(plan, [row[0] for row in rows])
        tokens = sum(row[1] for row in rows)
        self.metrics.tokens.labels(self.role).inc(tokens)
        self.metrics.items.labels(self.role).inc(len(rows))
        return Ranked([(r.index, r.score) for r in ranked], tokens)
