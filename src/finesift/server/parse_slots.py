"""Fair turns at the parser processes for uploads: each knowledge base queues on its own.

The parser pool (:mod:`finesift.ingest.workers`) has a few processes; an upload's PDF, DOCX and HTML
files wait for one. A single FIFO queue lets one KB's burst of slow files hold every other KB's
uploads for minutes; :class:`FairSlots` keeps one queue per KB and hands a freed slot to the KBs in
turn (round robin), so a KB waits for at most one file of each other KB per slot. A file that
cannot get a slot within its request's deadline raises
:class:`~finesift.errors.DeadlineExceeded` (503 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
from collections import deque


class FairSlots:
    """``size`` slots shared round robin by keys (KB names); used from one event loop only."""

    def __init__(self, size: int) -> None:
        self._free = size
        #: Waiters per key, in turn order: the key served last moves to the back.
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def waiting(self) -> int:
        """Waiters in every queue."""
        return sum(len(q) for q in self._waiting.values())

    async def acquire(self, key: str, *, timeout: float) -> bool:
        """Take a slot for ``key``; False if none came within ``timeout`` seconds. Cancel-safe."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(future)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(future)
        except TimeoutError:
            return self._give_up(key, future)
        except asyncio.CancelledError:
            if self._give_up(key, future):
                self.release()  # granted as the caller went away: pass the slot on
            raise
        return True

    def _give_up(self, key: str, future: asyncio.Future[None]) -> bool:
        """Leave the queue; True if the slot was granted meanwhile (the caller then holds it)."""
        if future.done():
            return True
        future.cancel()
        queue = self._waiting.get(key)
        if queue is not None:
            queue.remove(future)
            if not queue:
                del self._waiting[key]
        return False

    def release(self) -> None:
        """Free a slot: to the head of the next key's queue in turn, else back to the pool."""
        while self._waiting:
            key = next(iter(self._waiting))
            queue = self._waiting.pop(key)
            future = queue.popleft()
            if queue:
                self._waiting[key] = queue  # to the back of the turn order
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
