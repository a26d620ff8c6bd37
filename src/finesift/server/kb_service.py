"""Knowledge bases inside the server: one registry per app, its own threads, one writer per KB.

Search, ask, chat, info and document lists all lease KBs from the registry's reference-counted
handles (:mod:`finesift.server.kb_handles`), made and closed in the app's lifespan. Every KB is
opened with the server's embedder (a KB built with another model answers 409 with the fingerprint
difference) and, if it records a reranker, the server's reranker; the KB's recorded instruction
reaches both.

KB work runs on the registry's own thread pools, never on asyncio's default executor, so parsing
uploads or calling a chat model cannot starve it: reads (opens included) on ``server.kb_read_threads``
threads, at most ``server.queue_size`` in flight (429 beyond),
each within ``server.request_timeout`` (503); writes on ``server.kb_write_threads`` threads. Writes to
one KB (create, upload, index, delete, drop, compaction) queue behind one ``asyncio.Lock``, so the
server never races itself for the KB's file lock; at most ``server.kb_write_queue`` writes wait per KB,
the next gets 429. A writer outside the server (``finesift index``) still makes a write fail with 409.
Searches read committed snapshots and never wait for writers. A drop waits (at most the request
deadline) for the requests that hold the KB and answers new ones 404. Once ``kb.optimize_versions``
store versions piled up, the KB is compacted in the background, in its writer queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from finesift.errors import DeadlineExceeded, FinesiftError, NotFound, Overloaded
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.errors import NotReady
from finesift.server.kb_handles import KBHandles
from finesift.server.parse_slots import FairSlots
from finesift.server.state import ServerState
from finesift.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class _WriteSlot:
    lock: asyncio.Lock
    waiting: int = 0


class KBRegistry:
    """Open knowledge bases of one server, keyed by name, and the threads that read and write them."""

    def __init__(self, settings: Settings, state: ServerState) -> None:
        self.settings = settings
        self.state = state
        self.handles = KBHandles(
            settings,
            embedder=lambda: state.require_embeddings().embedder,
            reranker=lambda: state.services.reranker,
        )
        server = settings.server
        self._read_pool = ThreadPoolExecutor(server.kb_read_threads, thread_name_prefix="finesift-kb-read")
        self._write_pool = ThreadPoolExecutor(server.kb_write_threads, thread_name_prefix="finesift-kb-write")
        self._writes: dict[str, _WriteSlot] = {}
        #: Turns at the parser processes for uploads, per KB (one event loop: the app's).
        self.parse_slots = FairSlots(max(settings.kb.parse_workers, 1))
        self._reads = 0
        self._compactions: dict[str, asyncio.Task[bool]] = {}
        self._closed = False

    # ---- handles ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return KnowledgeBase.names(settings=self.settings)

    def require(self, name: str) -> str:
        return self.handles.require(name)

    def open(self, name: str) -> KnowledgeBase:
        """The KB ``name`` with the server's models (NotFound, Conflict on a fingerprint mismatch)."""
        return self.handles.open(name)

    @contextmanager
    def lease(self, name: str, *, models: bool = True) -> Iterator[KnowledgeBase]:
        """The KB ``name``, held until the block ends (a drop waits for it); blocking, for threads."""
        with self.handles.lease(name, models=models) as kb:
            yield kb

    def forget(self, name: str) -> None:
        self.handles.forget(name)

    @contextmanager
    def dropping(self, name: str) -> Iterator[None]:
        """New uses of ``name`` get 404 meanwhile; the ones in flight end first (or run out the deadline)."""
        with self.handles.dropping(name, wait=self.settings.server.request_timeout):
            yield

    # ---- reading ----------------------------------------------------------------------------

    async def read(self, call: Callable[[], T]) -> T:
        """Run a blocking read on the read threads within the request deadline; ``queue_size`` at once."""
        server = self.settings.server
        if self._reads >= server.queue_size:
            raise Overloaded(f"{self._reads} knowledge-base reads are in flight; retry shortly")
        self._reads += 1  # one event loop: no lock needed
        try:
            return await self._deadline(self._submit(self._read_pool, call))
        finally:
            self._reads -= 1

    def _submit(self, pool: ThreadPoolExecutor, call: Callable[[], T]) -> Future[T]:
        if self._closed:
            raise NotReady("the server is shutting down")
        try:
            return pool.submit(call)
        except RuntimeError as exc:  # the pool was shut down meanwhile
            raise NotReady("the server is shutting down") from exc

    async def _deadline(self, future: Future[T]) -> T:
        timeout = self.settings.server.request_timeout
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError as exc:
            future.cancel()  # not started yet: it never will
            raise DeadlineExceeded(
                f"the request did not finish within {timeout:g} s; retry, or lower top_k/candidates"
            ) from exc

    async def read_kb(self, name: str, call: Callable[[KnowledgeBase], T], *, models: bool = True) -> T:
        """:meth:`read` of ``call(kb)`` with KB ``name`` leased for the call (the open is inside)."""

        def run() -> T:
            with self.lease(name, models=models) as kb:
                return call(kb)

        return await self.read(run)

    async def get(self, name: str) -> KnowledgeBase:
        """:meth:`open` (404/409 before a write reads its body): on the write threads, so that read
        pressure cannot refuse it, and within the request deadline."""
        return await self._deadline(self._submit(self._write_pool, lambda: self.open(name)))

    # ---- writing ----------------------------------------------------------------------------

    @asynccontextmanager
    async def writing(self, name: str, *, bounded: bool = True) -> AsyncIterator[None]:
        """Hold the server's one writer slot for KB ``name`` (429 when too many writes wait)."""
        slot = self._writes.setdefault(name, _WriteSlot(asyncio.Lock()))
        limit = self.settings.server.kb_write_queue
        if bounded and slot.waiting >= limit:
            raise Overloaded(
                f"{slot.waiting} writes to knowledge base {name!r} are already waiting; retry later"
            )
        slot.waiting += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.waiting -= 1
            if slot.waiting == 0:  # nobody holds or awaits it (single event loop): forget the slot
                self._writes.pop(name, None)

    async def write(self, name: str, call: Callable[[], T], *, bounded: bool = True) -> T:
        """Run a blocking write to KB ``name`` on the write threads, after the writes queued before it."""
        async with self.writing(name, bounded=bounded):
            future = asyncio.wrap_future(self._submit(self._write_pool, call))
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # A thread cannot be stopped: keep the slot until it is done, so no write overlaps it.
                await asyncio.wait([future])
                raise

    async def write_kb(self, name: str, call: Callable[[KnowledgeBase], T]) -> T:
        """:meth:`write` of ``call(kb)`` with KB ``name`` leased (a drop queued before it wins: 404);
        compaction follows in the background once it is due."""

        def run() -> tuple[T, bool]:
            with self.lease(name) as kb:
                return call(kb), kb.optimize_due()

        result, due = await self.write(name, run)
        if due:
            self._compact_soon(name)
        return result

    # ---- compaction -------------------------------------------------------------------------

    @property
    def compacting(self) -> frozenset[str]:
        """The KBs whose background compaction is queued or running."""
        return frozenset(self._compactions)

    def _compact_soon(self, name: str) -> None:
        """Compact KB ``name`` in the background (once at a time per KB)."""
        if self._closed or name in self._compactions:
            return
        task = asyncio.get_running_loop().create_task(self.compact(name), name=f"finesift-compact-{name}")
        self._compactions[name] = task
        task.add_done_callback(lambda _: self._compactions.pop(name, None))

    async def compact(self, name: str) -> bool:
        """Compact KB ``name`` in its writer queue if still due; never raises (a dropped KB is skipped)."""

        def run() -> bool:
            with self.lease(name) as kb:
                if not kb.optimize_due():
                    return False
                kb.optimize()
                return True

        try:
            return await self.write(name, run, bounded=False)
        except (NotFound, NotReady):
            return False  # dropped meanwhile, or the server is shutting down
        except FinesiftError as exc:  # e.g. another writer outside the server: the next write retries
            log.warning("compacting knowledge base %r failed: %s", name, exc)
        except Exception:
            log.exception("compacting knowledge base %r failed", name)
        return False

    # ---- lifecycle --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Let running compactions finish (within ``shutdown_timeout``), then close everything."""
        self._closed = True
        tasks = list(self._compactions.values())
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.server.shutdown_timeout)
        self.close()

    def close(self) -> None:
        self._closed = True
        self.handles.close()
        for pool in (self._read_pool, self._write_pool):
            pool.shutdown(wait=False, cancel_futures=True)
