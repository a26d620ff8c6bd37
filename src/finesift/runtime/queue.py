"""Async batching across concurrent requests, by token budget, with bounded admission.

Requests submit lists of items, each with a token cost. One worker per queue takes items in arrival
order, across requests that share a key, until the token budget or the item cap is reached, and runs
the synchronous model function on them in its own thread; each request gets its results back in
its own order. At most ``max_jobs`` requests are admitted (the rest get :class:`Overloaded`), every
request has a deadline (:class:`DeadlineExceeded`), items of a request that gave up are dropped, and
:meth:`BatchQueue.close` finishes admitted work before stopping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from finesift.errors import BackendError, DeadlineExceeded, FinesiftError, Overloaded

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: ``run(key, items) -> results``: one result per item, in order; called in the worker thread.
BatchFunction = Callable[[Hashable, list[T]], Sequence[R]]


class QueueObserver(Protocol):
    """Receives measurements (for metrics); called on the event loop."""

    def batch(self, *, items: int, tokens: int, seconds: float) -> None: ...

    def waited(self, seconds: float) -> None: ...


@dataclass(eq=False)
class _Job:
    key: Hashable
    items: list[Any]
    costs: list[int]
    future: asyncio.Future[list[Any]]
    submitted: float = field(default_factory=time.perf_counter)
    results: list[Any] = field(default_factory=list)
    taken: int = 0
    done: int = 0

    def __post_init__(self) -> None:
        self.results = [None] * len(self.items)


@dataclass(frozen=True)
class QueueLimits:
    """Token budget and item cap per model call; admitted requests; seconds per request."""

    token_budget: int = 16384
    max_items: int = 512
    max_jobs: int = 64
    timeout: float = 60.0


class BatchQueue(Generic[T, R]):
    """One model's request queue and its worker (see the module docstring)."""

    def __init__(
        self,
        run: BatchFunction[T, R],
        limits: QueueLimits,
        *,
        name: str = "model",
        observer: QueueObserver | None = None,
    ) -> None:
        self._run = run
        self.limits = limits
        self.name = name
        self._observer = observer
        self._pending: list[_Job] = []
        self._jobs: set[_Job] = set()
        self._wake = asyncio.Event()
        self._closing = False
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"finesift-{name}")

    @property
    def depth(self) -> int:
        """Requests admitted and not finished."""
        return len(self._jobs)

    @property
    def queued_items(self) -> int:
        """Items waiting for a model call."""
        return sum(len(job.items) - job.taken for job in self._pending)

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"finesift-{self.name}")

    async def submit(self, key: Hashable, items: Sequence[T], costs: Sequence[int]) -> list[R]:
        """Results for ``items`` in order, computed in batches shared with other requests of ``key``."""
        if len(items) != len(costs):
            raise ValueError("items and costs must have the same length")
        if self._closing or self._worker is None:
            raise Overloaded(
                f"the {self.name} queue is not accepting work (shutting down); retry on another server"
            )
        if not items:
            return []
        if len(self._jobs) >= self.limits.max_jobs:
            raise Overloaded(
                f"the {self.name} queue is full ({self.limits.max_jobs} requests in progress); retry shortly"
            )
        job = _Job(
            key, list(items), [max(1, int(c)) for c in costs], asyncio.get_running_loop().create_future()
        )
        self._pending.append(job)
        self._jobs.add(job)
        self._wake.set()
        try:
            async with asyncio.timeout(self.limits.timeout):
                return await job.future
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"the request did not finish within {self.limits.timeout:g} s; server busy, retry later"
            ) from exc
        finally:
            self._forget(job)

    async def close(self, timeout: float) -> None:
        """Refuse new work, finish admitted requests (up to ``timeout`` seconds), stop the worker."""
        self._closing = True
        self._wake.set()
        if self._worker is not None:
            done, _ = await asyncio.wait({self._worker}, timeout=timeout)
            if not done:
                self._worker.cancel()
                log.warning(
                    "%s queue: %d request(s) unfinished after %g s", self.name, len(self._jobs), timeout
                )
        for job in list(self._jobs):
            self._fail(job, Overloaded("the server shut down before the request finished; retry"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _forget(self, job: _Job) -> None:
        self._jobs.discard(job)
        if job in self._pending:
            self._pending.remove(job)
        self._wake.set()  # a closing worker may be waiting for the last request to go

    def _fail(self, job: _Job, exc: BaseException) -> None:
        if not job.future.done():
            job.future.set_exception(exc)
        self._forget(job)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = self._take()
            if not batch:
                if self._closing and not self._jobs:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            key = batch[0][0].key
            items = [item for job, start, end in batch for item in job.items[start:end]]
            began = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._call, key, items)
            except Exception as exc:
                for job, _, _ in batch:
                    self._fail(job, exc)
                continue
            self._scatter(batch, results)
            if self._observer is not None:
                tokens = sum(sum(job.costs[s:e]) for job, s, e in batch)
                self._observer.batch(items=len(items), tokens=tokens, seconds=time.perf_counter() - began)

    def _call(self, key: Hashable, items: list[Any]) -> Sequence[Any]:
        try:
            results = self._run(key, items)
        except FinesiftError:
            raise
        except Exception as exc:
            log.exception("%s model call failed", self.name)
            raise BackendError(f"the {self.name} model failed: {type(exc).__name__}: {exc}") from exc
        if len(results) != len(items):
            raise BackendError(
                f"the {self.name} model returned {len(results)} results for {len(items)} items"
            )
        return results

    def _take(self) -> list[tuple[_Job, int, int]]:
        """Items for the next call: FIFO over live requests of the oldest request's key, within limits."""
        self._pending = [job for job in self._pending if not job.future.done()]
        if not self._pending:
            return []
        key = self._pending[0].key
        batch: list[tuple[_Job, int, int]] = []
        tokens = count = 0
        for job in self._pending:
            if job.key != key:
                continue
            start = end = job.taken
            while end < len(job.items) and count < self.limits.max_items:
                if count and tokens + job.costs[end] > self.limits.token_budget:
                    break
                tokens, count, end = tokens + job.costs[end], count + 1, end + 1
            if end > start:
                if start == 0 and self._observer is not None:
                    self._observer.waited(time.perf_counter() - job.submitted)
                batch.append((job, start, end))
                job.taken = end
            if end < len(job.items):
                break
        self._pending = [job for job in self._pending if job.taken < len(job.items)]
        return batch

    def _scatter(self, batch: list[tuple[_Job, int, int]], results: Sequence[Any]) -> None:
        offset = 0
        for job, start, end in batch:
            job.results[start:end] = results[offset : offset + end - start]
            offset += end - start
            job.done += end - start
            if job.done == len(job.items):
                if not job.future.done():
                    job.future.set_result(job.results)
                self._forget(job)
