"""Prometheus metrics: requests, latency per stage, tokens, queue depth, batch sizes.

Each app owns its registry, so several apps (tests) never clash.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The methods counted by name; any other is counted as "other" (labels must not grow with client input).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class Metrics:
    """The server's metric families in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "finesift_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "finesift_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.stage = Histogram(
            "finesift_stage_seconds",
            "Latency per stage (prepare, queue, model)",
            ["model", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("finesift_tokens", "Tokens processed by the models", ["model"], registry=r)
        self.items = Counter(
            "finesift_items", "Texts or documents processed by the models", ["model"], registry=r
        )
        self.truncated = Counter(
            "finesift_truncated", "Texts truncated to the model window", ["model"], registry=r
        )
        self.batch_size = Histogram(
            "finesift_batch_size", "Items per model call", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "finesift_queue_depth", "Requests admitted and not finished", ["model"], registry=r
        )
        self.rejected = Counter(
            "finesift_rejected", "Requests refused because the queue was full", ["model"], registry=r
        )

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        """Read the queue depth of ``model`` at scrape time."""
        self.queue_depth.labels(model).set_function(lambda: float(depth()))

    def observer(self, model: str) -> QueueMetrics:
        return QueueMetrics(self, model)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class QueueMetrics:
    """Adapts :class:`Metrics` to the batch queue's observer protocol for one model."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.metrics = metrics
        self.model = model

    def batch(self, *, items: int, tokens: int, seconds: float) -> None:
        self.metrics.batch_size.labels(self.model).observe(items)
        self.metrics.stage.labels(self.model, "model").observe(seconds)

    def waited(self, seconds: float) -> None:
        self.metrics.stage.labels(self.model, "queue").observe(seconds)


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


def route_label(scope: Scope) -> str:
    """The matched route's template (``/v1/kbs/{kb}/search``), or "unmatched": never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Counts every HTTP request by route template, method and status, and times it.

    It runs before the Host check and auth, so every label comes from a fixed set: a client cannot
    add series (and grow ``/metrics``) by inventing methods or paths.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = route_label(scope)
            self.metrics.requests.labels(route, method_label(scope.get("method", "")), str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - began)
