"""Bounded parallel map over a thread pool: at most ``workers`` tasks in flight, results in order."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BoundedPool:
    """A thread pool that admits a new task only when one of ``workers`` slots is free (backpressure).

    ``map`` blocks the caller while all slots are busy, so memory stays bounded by ``workers``
    pending tasks however long the input is; the first failure cancels what has not started.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="finesift-pool")
        self._slots = threading.BoundedSemaphore(self.workers)

    def map(self, fn: Callable[[int, T], R], items: Sequence[T]) -> list[R]:
        """``[fn(i, item) for i, item in enumerate(items)]``, run ``workers`` at a time."""
        futures: list[Future[R]] = []
        try:
            for i, item in enumerate(items):
                self._slots.acquire()
                future = self._executor.submit(fn, i, item)
                future.add_done_callback(lambda _: self._slots.release())
                futures.append(future)
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
