"""Embedding and rerank for the server: request limits, then the shared batch queue, then the policy.

Validation and the Qwen3 policy (instruction, Matryoshka slice-then-normalise) are the library's own
functions; what is added here is admission (limits from :class:`ServerSettings`), cross-request
batching and metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from finesift.embedding.embedder import Embedder, InputType, slice_and_normalise, validate_dim
from finesift.embedding.instructions import resolve_instruction
from finesift.errors import InvalidRequest
from finesift.rerank.base import Reranker
from finesift.runtime.queue import BatchQueue, QueueLimits
from finesift.server.metrics import Metrics
from finesift.settings import ServerSettings
from finesift.validation import validate_texts

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
    """What an embeddings request asks for, after schema validation."""

    texts: list[str]
    input_type: InputType = "document"
    instruction: str | None = None
    dim: int | None = None
    truncate: bool = False


@dataclass(frozen=True)
class Prepared:
    texts: list[str]
    costs: list[int]
    dim: int
    truncated: int


@dataclass(frozen=True)
class EmbedResult:
    """``vectors`` (n, d) float32, L2-normalised; tokens the model read; texts truncated."""

    vectors: np.ndarray
    prompt_tokens: int
    truncated: int


class EmbeddingService:
    """Embeddings through a :class:`BatchQueue` shared by all requests."""

    role = "embedding"

    def __init__(self, embedder: Embedder, settings: ServerSettings, metrics: Metrics) -> None:
        self.embedder = embedder
        self.settings = settings
        self.metrics = metrics
        self.queue: BatchQueue[str, tuple[np.ndarray, int]] = BatchQueue(
            self._run, queue_limits(settings), name=self.role, observer=metrics.observer(self.role)
        )

    def _run(self, key: Hashable, texts: list[str]) -> list[tuple[np.ndarray, int]]:
        out = self.embedder.backend.embed(texts)
        tokens = out.tokens or [0] * len(texts)
        return [(out.vectors[i], tokens[i]) for i in range(len(texts))]

    def prepare(self, request: EmbedRequest) -> Prepared:
        """Validate against the limits; format; count tokens. Raises :class:`InvalidRequest`."""
        items = validate_texts(request.texts, what="input")
        if not items:
            raise InvalidRequest("input must not be empty; send at least one text")
        if len(items) > self.settings.max_inputs:
            raise InvalidRequest(
                f"too many inputs: {len(items)}; at most {self.settings.max_inputs} per request, split it"
            )
        if request.input_type == "document" and request.instruction is not None:
            raise InvalidRequest(
                'instruction applies to queries; set "input_type": "query" or drop instruction'
            )
        backend = self.embedder.backend
        dim = validate_dim(request.dim, backend.dimension)
        texts = self.embedder.format(items, input_type=request.input_type, instruction=request.instruction)
        counts = backend.count_tokens(texts)
        limit = backend.max_length
        over = [i for i, n in enumerate(counts) if n > limit]
        if over and not request.truncate:
            raise InvalidRequest(
                f"input[{over[0]}] has {counts[over[0]]} tokens, over the model's {limit}-token limit "
                f'({len(over)} input(s) too long); shorten it or send "truncate": true'
            )
        costs = [min(n, limit) for n in counts]
        if sum(costs) > self.settings.max_request_tokens:
            raise InvalidRequest(
                f"the request has {sum(costs)} tokens, over the limit of {self.settings.max_request_tokens} "
                "per request; split it"
            )
        return Prepared(texts, costs, dim, len(over))

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        began = time.perf_counter()
        if sum(len(t) for t in request.texts if isinstance(t, str)) <= INLINE_PREPARE_CHARS:
            prepared = self.prepare(request)
        else:
            prepared = await asyncio.to_thread(self.prepare, request)
        self.metrics.stage.labels(self.role, "prepare").observe(time.perf_counter() - began)
        rows = await self.queue.submit(None, prepared.texts, prepared.costs)
        vectors = slice_and_normalise(np.stack([row[0] for row in rows]), prepared.dim)
        tokens = sum(row[1] for row in rows)
        self.metrics.tokens.labels(self.role).inc(tokens)
        self.metrics.items.labels(self.role).inc(len(rows))
        self.metrics.truncated.labels(self.role).inc(prepared.truncated)
        return EmbedResult(vectors, tokens, prepared.truncated)


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
        out = self.reranker.score_detailed(query, documents, instruction=instruction)
        self.metrics.truncated.labels(self.role).inc(out.truncated)
        tokens = out.tokens or [0] * len(documents)
        return list(zip(out.scores, tokens, strict=True))

    def prepare(
        self, query: str, documents: Sequence[str], *, instruction: str | None, top_n: int | None
    ) -> tuple[list[str], str]:
        """Validated documents and the resolved instruction. Raises :class:`InvalidRequest`."""
        if not query.strip():
            raise InvalidRequest("query must not be empty")
        docs = validate_texts(documents, what="documents")
        limit = self.settings.max_documents
        if not docs:
            raise InvalidRequest("documents must not be empty; send at least one")
        if len(docs) > limit:
            raise InvalidRequest(
                f"too many documents: {len(docs)}; at most {limit} per request, split the request"
            )
        if top_n is not None and not 1 <= top_n <= limit:
            raise InvalidRequest(f"top_n must be between 1 and {limit}, not {top_n}")
        return docs, resolve_instruction(instruction, default=self.reranker.default_instruction)

    async def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        instruction: str | None = None,
        top_n: int | None = None,
    ) -> Ranked:
        began = time.perf_counter()
        docs, task = self.prepare(query, documents, instruction=instruction, top_n=top_n)
        self.metrics.stage.labels(self.role, "prepare").observe(time.perf_counter() - began)
        window = self.reranker.backend.max_length
        # A byte-based estimate is enough here: the backend batches by exact token counts itself.
        costs = [min(window, (len(query) + len(d)) // 3 + 1) for d in docs]
        rows = await self.queue.submit((query, task), docs, costs)
        order = sorted(range(len(rows)), key=lambda i: (-rows[i][0], i))
        tokens = sum(row[1] for row in rows)
        self.metrics.tokens.labels(self.role).inc(tokens)
        self.metrics.items.labels(self.role).inc(len(rows))
        return Ranked([(i, float(rows[i][0])) for i in order[:top_n]], tokens)
