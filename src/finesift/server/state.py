"""The server's lifecycle: load models in the background, serve, drain.

``phase`` moves loading -> ready -> draining (or loading -> failed). ``/ready`` reports it and every
model route refuses with 503 unless it is ``ready``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from finesift.doctor import self_test
from finesift.embedding.embedder import Embedder
from finesift.errors import BackendError, FinesiftError, InvalidRequest, NotFound
from finesift.rerank.base import Reranker
from finesift.runtime.queue import BatchQueue
from finesift.server.errors import NotReady
from finesift.server.inference import EmbeddingService, RerankService
from finesift.server.metrics import Metrics
from finesift.server.naming import ServedNames, served_name
from finesift.settings import Settings

log = logging.getLogger(__name__)

Phase = Literal["loading", "ready", "draining", "failed"]
WARM_UP_TEXT = "finesift warm-up"
NO_EMBEDDER = (
    "this server serves no embedding model (it was started with --embedding-model none); restart "
    "finesift serve with --embedding-model MODEL to embed texts or use knowledge bases"
)
NO_RERANKER = (
    "this server serves no reranker (it was started with --reranker-model none); restart finesift serve "
    "with --reranker-model MODEL (e.g. Qwen/Qwen3-Reranker-0.6B) to rerank"
)


class ModelServices(Protocol):
    """What the server needs from the composition root (:class:`finesift.services.Services`)."""

    @property
    def embedder(self) -> Embedder: ...

    @property
    def reranker(self) -> Reranker: ...


def _depth_of(queue: BatchQueue[Any, Any]) -> Callable[[], int]:
    return lambda: queue.depth


class ServerState:
    """Models, queues, metrics and readiness of one app."""

    def __init__(self, settings: Settings, services: ModelServices, metrics: Metrics) -> None:
        if not (settings.embedding.enabled or settings.reranker.enabled):
            raise InvalidRequest(
                "nothing to serve: both --embedding-model and --reranker-model are none; name at least one"
            )
        self.settings = settings
        self.services = services
        self.metrics = metrics
        self.phase: Phase = "loading"
        self.error: FinesiftError | None = None
        self.started = int(time.time())
        self.embeddings: EmbeddingService | None = None
        self.rerank: RerankService | None = None
        #: The names clients send as ``model`` (set when the models are in).
        self.names = ServedNames()
        #: Called once if loading fails (``finesift serve`` uses it to stop with the error).
        self.on_fatal: Callable[[FinesiftError], None] | None = None
        self._loader: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin loading the models; the server answers /health and /ready meanwhile."""
        self._loader = asyncio.get_running_loop().create_task(self._load(), name="finesift-load")

    async def wait_ready(self) -> None:
        """Wait for loading to end (tests, benchmarks)."""
        if self._loader is not None:
            await asyncio.shield(self._loader)

    async def _load(self) -> None:
        try:
            embedder, reranker = await asyncio.to_thread(self._build)
        except Exception as exc:
            self._fail(exc)
            return
        settings, server = self.settings, self.settings.server
        if embedder is not None:
            self.embeddings = EmbeddingService(embedder, server, self.metrics)
        if reranker is not None:
            self.rerank = RerankService(reranker, server, self.metrics)
        self.names = ServedNames(
            embedding=served_name(settings.embedding, embedder.model_id) if embedder else None,
            reranker=served_name(settings.reranker, reranker.model_id) if reranker else None,
        )
        for service in (self.embeddings, self.rerank):
            if service is not None:
                service.queue.start()
                self.metrics.watch_queue(service.role, _depth_of(service.queue))
        if self.phase == "loading":
            self.phase = "ready"
            log.info("ready: embedding %s, reranker %s", self.names.embedding, self.names.reranker)

    def _build(self) -> tuple[Embedder | None, Reranker | None]:
        settings = self.settings
        embedder = self.services.embedder if settings.embedding.enabled else None
        reranker = self.services.reranker if settings.reranker.enabled else None
        # One tiny call each: the first real request then pays no lazy initialisation.
        # Truncate: the warm-up text must not stop a server whose policy refuses long input.
        # warm_up(): a server's first large batch does not pay the fused-kernel compile (fuse "auto").
        if embedder is not None:
            embedder.encode([WARM_UP_TEXT], input_type="query", on_overflow="truncate")
            embedder.warm_up()
        if reranker is not None:
            reranker.score(WARM_UP_TEXT, [WARM_UP_TEXT])
            reranker.warm_up()
        if settings.server.self_test:
            self._self_test(embedder, reranker)
        return embedder, reranker

    def _self_test(self, embedder: Embedder | None, reranker: Reranker | None) -> None:
        """The doctor's probe against the model cards' code (fp32); a failing row stops the server."""
        report = self_test(self.settings, embedder=embedder, reranker=reranker)
        log.info("self-test:\n%s", report.table())
        if not report.ok:
            failed = "; ".join(r.explain() for r in report.failures)
            raise BackendError(f"self-test failed: {failed}")

    def _fail(self, exc: Exception) -> None:
        if isinstance(exc, FinesiftError):
            error = exc
        else:
            log.error("loading the models failed", exc_info=exc)
            error = BackendError(f"loading the models failed: {type(exc).__name__}: {exc}")
        self.phase, self.error = "failed", error
        log.error("cannot serve: %s", error)
        if self.on_fatal is not None:
            self.on_fatal(error)

    async def stop(self) -> None:
        """Drain: refuse new work at once, finish admitted requests, stop the workers."""
        if self.phase != "failed":
            self.phase = "draining"
        if self._loader is not None and not self._loader.done():
            self._loader.cancel()
        timeout = self.settings.server.shutdown_timeout
        services = [s for s in (self.embeddings, self.rerank) if s is not None]
        await asyncio.gather(*(s.queue.close(timeout) for s in services))

    def readiness(self) -> str | None:
        """Why the server is not ready, or None."""
        if self.phase == "ready":
            return None
        if self.phase == "loading":
            return "the models are still loading; retry shortly"
        if self.phase == "draining":
            return "the server is shutting down"
        return "the models failed to load; see the server log"

    def require_embeddings(self) -> EmbeddingService:
        """The embedding service; 503 until ready, 404 when this server serves no embedder."""
        self.require_ready()
        if self.embeddings is None:
            raise NotFound(NO_EMBEDDER)
        return self.embeddings

    def require_rerank(self) -> RerankService:
        """The rerank service; 503 until ready, 404 when this server serves no reranker."""
        self.require_ready()
        if self.rerank is None:
            raise NotFound(NO_RERANKER)
        return self.rerank

    def require_ready(self) -> None:
        """503 unless the models are loaded and the server is not draining."""
        reason = self.readiness()
        if reason is not None:
            raise NotReady(reason)
