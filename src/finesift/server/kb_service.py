"""Knowledge bases inside the server: opened once with the server's models, one writer per KB.

Every KB is opened with the server's embedder (a KB built with another model answers 409 with the
fingerprint difference) and, if it records a reranker, the server's reranker. Writes to one KB
(create, upload, index, delete, drop) queue behind one ``asyncio.Lock`` and run in a thread, so
concurrent clients never race for the KB's file lock; at most ``server.kb_write_queue`` writes wait
per KB, the next gets 429. A writer outside the server (``finesift index``) still makes a write
fail with 409. Searches read committed snapshots in threads and never wait for writers; at most
``server.queue_size`` reads run or wait at once (429 beyond), each within ``request_timeout`` (503).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from finesift.errors import DeadlineExceeded, NotFound, Overloaded
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.kb.manifest import MANIFEST, kb_dir, read_manifest, validate_name
from finesift.server.state import ServerState
from finesift.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

T = TypeVar("T")


@dataclass
class _Entry:
    kb: KnowledgeBase
    stamp: tuple[int, int]


@dataclass
class _WriteSlot:
    lock: asyncio.Lock
    waiting: int = 0


class KBRegistry:
    """Open knowledge bases of one server, keyed by name."""

    def __init__(self, settings: Settings, state: ServerState) -> None:
        self.settings = settings
        self.state = state
        self._open: dict[str, _Entry] = {}
        self._guard = threading.Lock()
        self._writes: dict[str, _WriteSlot] = {}
        self._reads = 0

    # ---- reading -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return KnowledgeBase.names(settings=self.settings)

    def require(self, name: str) -> str:
        """``name`` if such a KB exists; otherwise a 404 that names the API's way to create it."""
        if not KnowledgeBase.exists(validate_name(name), settings=self.settings):
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
        self.require(name)
        services = self.state.require_embeddings()
        stamp = self._stamp(name)
        with self._guard:
            entry = self._open.get(name)
            if entry is not None and entry.stamp == stamp:
                return entry.kb
            if entry is not None:
                entry.kb.close()
                del self._open[name]
            path = kb_dir(self.settings.home, name)
            reranker = self.state.services.reranker if read_manifest(path, name).reranker_model else None
            kb = KnowledgeBase.open(
                name, settings=self.settings, embedder=services.embedder, reranker=reranker
            )
            self._open[name] = _Entry(kb, stamp)
            return kb

    async def get(self, name: str) -> KnowledgeBase:
        """:meth:`open` in a thread (the first open of a store imports and reads it)."""
        return await asyncio.to_thread(self.open, name)

    def open_plain(self, name: str) -> KnowledgeBase:
        """The KB without models (info, documents): works while models load and for any fingerprint."""
        return KnowledgeBase.open(self.require(name), settings=self.settings)

    def forget(self, name: str) -> None:
        with self._guard:
            entry = self._open.pop(name, None)
        if entry is not None:
            entry.kb.close()

    def close(self) -> None:
        for name in list(self._open):
            self.forget(name)

    # ---- running -----------------------------------------------------------------------------

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
