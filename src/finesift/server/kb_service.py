"""Knowledge bases inside the server: one registry per app, the server's models, one writer per KB.

Search, ask and chat all read through the registry (made and closed in the app's lifespan). Every KB
is opened with the server's embedder (a KB built with another model answers 409 with the
fingerprint difference) and, if it records a reranker, the server's reranker; the KB's recorded
instruction reaches both. Writes to one KB (create, upload, index, delete, drop) queue behind one
``asyncio.Lock`` and run in a thread, so concurrent clients never race for the KB's file lock; at
most ``server.kb_write_queue`` writes wait per KB, the next gets 429. A writer outside the server
(``finesift index``) still makes a write fail with 409. Searches read committed snapshots in threads
and never wait for writers; at most ``server.queue_size`` reads run or wait at once (429 beyond),
each within ``request_timeout`` (503). A drop waits for the reads that hold the KB and answers new
ones 404; a KB re-created (or dropped) outside the server is noticed by its manifest's inode.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from finesift.errors import DeadlineExceeded, FinesiftError, NotFound, Overloaded, StoreError
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.kb.manifest import MANIFEST, kb_dir, read_manifest, validate_name
from finesift.server.state import ServerState
from finesift.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


T = TypeVar("T")


@dataclass
class _Entry:
    name: str
    kb: KnowledgeBase
    stamp: tuple[int, int]
    readers: int = 0
    retired: bool = False


@dataclass
class _WriteSlot:
    lock: asyncio.Lock
    waiting: int = 0


def _store_failure(exc: Exception) -> bool:
    """Whether ``exc`` may come from a store whose files went away (not a request's own error)."""
    return isinstance(exc, StoreError) or not isinstance(exc, FinesiftError)


class KBRegistry:
    """Open knowledge bases of one server, keyed by name; search, ask and chat all read through it.

    A handle whose KB changed on disk (dropped and re-created, migrated) is retired: new reads get a
    fresh one, and the old one is closed when its last reader is done.
    """

    def __init__(self, settings: Settings, state: ServerState) -> None:
        self.settings = settings
        self.state = state
        self._open: dict[str, _Entry] = {}
        self._retired: list[_Entry] = []  # replaced handles that readers still hold
        self._guard = threading.Condition()
        self._dropping: set[str] = set()
        self._writes: dict[str, _WriteSlot] = {}
        self._reads = 0

    # ---- reading -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return KnowledgeBase.names(settings=self.settings)

    def require(self, name: str) -> str:
        """``name`` if such a KB exists; otherwise a 404 that names the API's way to create it."""
        if name in self._dropping or not KnowledgeBase.exists(validate_name(name), settings=self.settings):
            raise NotFound(
                f"no knowledge base named {name!r}; create it with POST /v1/kbs (or `finesift index "
                f"PATH --kb {name}`), or pick one from GET /v1/kbs"
            )
        return name

    def _stamp(self, name: str) -> tuple[int, int]:
        """Identity of the KB on disk: a KB dropped and re-created elsewhere gets a new manifest inode."""
        try:
            info = os.stat(kb_dir(self.settings.home, name) / MANIFEST)
        except OSError:
            return (0, 0)
        return (info.st_ino, info.st_mtime_ns)

    def open(self, name: str) -> KnowledgeBase:
        """The KB ``name`` with the server's models (NotFound, Conflict on a fingerprint mismatch)."""
        with self._guard:
            return self._entry(name).kb

    @contextmanager
    def lease(self, name: str) -> Iterator[KnowledgeBase]:
        """:meth:`open`, kept open (and its files kept) until the block ends; blocking, for threads."""
        with self._guard:
            entry = self._entry(name)
            entry.readers += 1
        try:
            yield entry.kb
        except Exception as exc:
            # Dropped or re-created behind the server's back (``finesift kb drop``) while being read.
            if _store_failure(exc) and self._stamp(name) != entry.stamp:
                raise NotFound(f"knowledge base {name!r} was dropped or replaced while it was read") from exc
            raise
        finally:
            with self._guard:
                entry.readers -= 1
                last = entry.retired and entry.readers == 0
                if last:
                    self._retired.remove(entry)
                self._guard.notify_all()
            if last:
                entry.kb.close()

    def _entry(self, name: str) -> _Entry:
        """The current handle of ``name``, opened if needed (call with the guard held)."""
        self.require(name)
        services = self.state.require_embeddings()
        stamp = self._stamp(name)
        entry = self._open.get(name)
        if entry is not None and entry.stamp == stamp:
            return entry
        if entry is not None:
            self._retire(name)
        # A server started with --reranker-model none searches without reranking, never loads the KB's.
        rerank = self.settings.reranker.enabled
        reranker = self.state.services.reranker if rerank and self._records_reranker(name) else None
        kb = KnowledgeBase.open(
            name, settings=self.settings, embedder=services.embedder, reranker=reranker, rerank=rerank
        )
        entry = self._open[name] = _Entry(name, kb, stamp)
        return entry

    def _records_reranker(self, name: str) -> bool:
        return read_manifest(kb_dir(self.settings.home, name), name).reranker_model is not None

    async def get(self, name: str) -> KnowledgeBase:
        """:meth:`open` in a thread (the first open of a store imports and reads it)."""
        return await asyncio.to_thread(self.open, name)

    def open_plain(self, name: str) -> KnowledgeBase:
        """The KB without models (info, documents): works while models load and for any fingerprint."""
        return KnowledgeBase.open(self.require(name), settings=self.settings)

    def _retire(self, name: str) -> None:
        """Stop handing out ``name``'s handle; close it now if nobody reads it (call with the guard held)."""
        entry = self._open.pop(name, None)
        if entry is None:
            return
        entry.retired = True
        if entry.readers == 0:
            entry.kb.close()
        else:
            self._retired.append(entry)

    def forget(self, name: str) -> None:
        """Retire the handle of ``name`` (the next read opens the KB afresh)."""
        with self._guard:
            self._retire(name)

    @contextmanager
    def dropping(self, name: str) -> Iterator[None]:
        """While the block runs, ``name`` is unknown to new reads, and its current readers have finished
        (or ran past the request deadline, by which time their clients have had their answer)."""
        with self._guard:
            self._dropping.add(name)
            self._retire(name)
            busy = lambda: any(e.name == name for e in self._retired)  # noqa: E731
            self._guard.wait_for(lambda: not busy(), self.settings.server.request_timeout)
        try:
            yield
        finally:
            with self._guard:
                self._dropping.discard(name)

    def close(self) -> None:
        with self._guard:
            for name in list(self._open):
                self._retire(name)

    # ---- running -----------------------------------------------------------------------------

    async def read_kb(self, name: str, call: Callable[[KnowledgeBase], T]) -> T:
        """:meth:`read` of ``call(kb)`` with KB ``name`` leased for the call."""

        def run() -> T:
            with self.lease(name) as kb:
                return call(kb)

        return await self.read(run)

    async def read(self, call: Callable[[], T]) -> T:
        """Run a blocking read in a thread, within the request deadline; at most ``queue_size`` at once."""
        server = self.settings.server
        if self._reads >= server.queue_size:
            raise Overloaded(f"{self._reads} knowledge-base reads are in flight; retry shortly")
        self._reads += 1
        try:
            return await asyncio.wait_for(asyncio.to_thread(call), server.request_timeout)
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"the search did not finish within {server.request_timeout:g} s; retry, or lower "
                "top_k/candidates"
            ) from exc
        finally:
            self._reads -= 1

    @asynccontextmanager
    async def writing(self, name: str) -> AsyncIterator[None]:
        """Hold the server's one writer slot for KB ``name`` (429 when too many writes wait)."""
        slot = self._writes.setdefault(name, _WriteSlot(asyncio.Lock()))
        limit = self.settings.server.kb_write_queue
        if slot.waiting >= limit:
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

    async def write(self, name: str, call: Callable[[], T]) -> T:
        """Run a blocking write to KB ``name`` in a thread, after the writes queued before it."""
        async with self.writing(name):
            return await asyncio.to_thread(call)

    async def write_kb(self, name: str, call: Callable[[KnowledgeBase], T]) -> T:
        """:meth:`write` of ``call(kb)`` with KB ``name`` leased (a drop queued before it wins: 404)."""

        def run() -> T:
            with self.lease(name) as kb:
                return call(kb)

        return await self.write(name, run)
