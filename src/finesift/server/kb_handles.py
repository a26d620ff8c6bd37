"""Reference-counted handles of the server's open knowledge bases: one per name, shared by every request.

A handle owns one open store. Info and document lists read it as is (``models=False``: works while
the models load and for a KB of any fingerprint); search, answers and writes read it bound to the
server's models (a KB built with another embedder is a 409). Every use *leases* the handle, and the
count of leases is what a drop waits for: new leases of a KB being dropped get 404, the drop waits
(bounded) for the leases in flight, and one that outlives the wait fails with 404 when the files go,
never with a store error. A KB dropped and re-created outside the server gets a new manifest inode:
its old handle is retired (closed when its last lease ends) and new leases get a fresh one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from finesift.embedding.embedder import Embedder
from finesift.errors import FinesiftError, NotFound, StoreError
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.kb.manifest import MANIFEST, kb_dir, validate_name
from finesift.rerank.base import Reranker
from finesift.settings import Settings

log = logging.getLogger(__name__)

#: The server's embedder, or :class:`~finesift.server.errors.NotReady` while it loads.
EmbedderOf = Callable[[], Embedder]
#: The server's reranker (asked for only by KBs that record one).
RerankerOf = Callable[[], Reranker]


@dataclass
class _Entry:
    name: str
    stamp: tuple[int, int]
    plain: KnowledgeBase  # owns the store
    bound: KnowledgeBase | None = None  # the same store with the server's models
    users: int = 0
    retired: bool = False

    def close(self) -> None:
        (self.bound or self.plain).close()  # both share one store: close it once


def _store_failure(exc: Exception) -> bool:
    """Whether ``exc`` may come from a store whose files went away (not a request's own error)."""
    return isinstance(exc, StoreError) or not isinstance(exc, FinesiftError)


def _gone(name: str) -> NotFound:
    return NotFound(
        f"no knowledge base named {name!r}; create it with POST /v1/kbs (or `finesift index "
        f"PATH --kb {name}`), or pick one from GET /v1/kbs"
    )


class KBHandles:
    """The open KBs of one server by name; thread-safe. Leases count users; drops wait for them."""

    def __init__(self, settings: Settings, *, embedder: EmbedderOf, reranker: RerankerOf) -> None:
        self.settings = settings
        self._embedder = embedder
        self._reranker = reranker
        self._open: dict[str, _Entry] = {}
        self._retired: list[_Entry] = []  # replaced handles that leases still hold
        self._guard = threading.Condition()
        self._dropping: set[str] = set()
        self._openers: dict[str, threading.Lock] = {}  # one open at a time per name

    def require(self, name: str) -> str:
        """``name`` if such a KB exists and is not being dropped; otherwise a 404 naming the way out."""
        if name in self._dropping or not KnowledgeBase.exists(validate_name(name), settings=self.settings):
            raise _gone(name)
        return name

    def _stamp(self, name: str) -> tuple[int, int]:
        """Identity of the KB on disk: a KB dropped and re-created elsewhere gets a new manifest inode."""
        try:
            info = os.stat(kb_dir(self.settings.home, name) / MANIFEST)
        except OSError:
            return (0, 0)
        return (info.st_ino, info.st_mtime_ns)

    def _current(self, name: str) -> _Entry | None:
        """The open handle of ``name`` if it is still the KB on disk; 404 if none (guard held)."""
        self.require(name)
        entry = self._open.get(name)
        return entry if entry is not None and entry.stamp == self._stamp(name) else None

    def _acquire(self, name: str, models: bool) -> tuple[_Entry, KnowledgeBase]:
        """Lease the handle of ``name``, opening it if needed: outside the guard, so that a slow open
        holds up only the requests for the same KB."""
        with self._guard:
            entry = self._current(name)
            if entry is not None:
                return entry, self._take(entry, models)
            opener = self._openers.setdefault(name, threading.Lock())
        with opener:
            with self._guard:
                entry = self._current(name)  # another request opened it meanwhile
                if entry is not None:
                    return entry, self._take(entry, models)
            stamp = self._stamp(name)
            plain = self._open_plain(name, stamp)
            with self._guard:
                if name in self._dropping:
                    plain.close()
                    raise _gone(name)
                self._retire(name)
                entry = self._open[name] = _Entry(name, stamp, plain)
                return entry, self._take(entry, models)

    def _open_plain(self, name: str, stamp: tuple[int, int]) -> KnowledgeBase:
        try:  # the registry compacts in the background instead of inside each write
            return KnowledgeBase.open(name, settings=self.settings, auto_optimize=False)
        except Exception as exc:
            if _store_failure(exc) and (name in self._dropping or self._stamp(name) != stamp):
                raise _gone(name) from exc  # dropped while it was opened
            raise

    def _take(self, entry: _Entry, models: bool) -> KnowledgeBase:
        """One more user of ``entry`` (guard held); Conflict/NotReady leave it untouched."""
        kb = self._bind(entry) if models else entry.plain
        entry.users += 1
        return kb

    def _bind(self, entry: _Entry) -> KnowledgeBase:
        """The entry's KB with the server's models (call with the guard held)."""
        if entry.bound is None:
            # A server started with --reranker-model none searches without reranking, never loads the KB's.
            rerank = self.settings.reranker.enabled
            records = rerank and entry.plain.manifest.reranker_model is not None
            entry.bound = entry.plain.with_models(
                embedder=self._embedder(), reranker=self._reranker() if records else None, rerank=rerank
            )
        return entry.bound

    def open(self, name: str, *, models: bool = True) -> KnowledgeBase:
        """The KB ``name`` (NotFound; with ``models``, Conflict on a fingerprint mismatch), not leased."""
        entry, kb = self._acquire(name, models)
        self._release(entry)
        return kb

    @contextmanager
    def lease(self, name: str, *, models: bool = True) -> Iterator[KnowledgeBase]:
        """:meth:`open`, counted as a user until the block ends (a drop waits for it); blocking."""
        entry, kb = self._acquire(name, models)
        try:
            yield kb
        except Exception as exc:
            # Dropped (here, after the drop's wait ran out, or by `finesift kb drop`) while in use.
            if _store_failure(exc) and (name in self._dropping or self._stamp(name) != entry.stamp):
                raise NotFound(f"knowledge base {name!r} was dropped or replaced while it was read") from exc
            raise
        finally:
            self._release(entry)

    def _release(self, entry: _Entry) -> None:
        with self._guard:
            entry.users -= 1
            last = entry.retired and entry.users == 0
            if last:
                self._retired.remove(entry)
            self._guard.notify_all()
        if last:
            entry.close()

    def _retire(self, name: str) -> None:
        """Stop handing out ``name``'s handle; close it now if unused (call with the guard held)."""
        entry = self._open.pop(name, None)
        if entry is None:
            return
        entry.retired = True
        if entry.users == 0:
            entry.close()
        else:
            self._retired.append(entry)

    def forget(self, name: str) -> None:
        """Retire the handle of ``name`` (the next lease opens the KB afresh)."""
        with self._guard:
            self._retire(name)

    def users(self, name: str) -> int:
        """Leases of ``name`` in flight, on its current and retired handles."""
        with self._guard:
            entries = [*self._retired, *([self._open[name]] if name in self._open else [])]
            return sum(e.users for e in entries if e.name == name)

    @contextmanager
    def dropping(self, name: str, *, wait: float) -> Iterator[None]:
        """While the block runs, new leases of ``name`` get 404, and the leases in flight have ended
        or ran ``wait`` seconds (by then their clients have had their answer); blocking."""
        with self._guard:
            self._dropping.add(name)
            self._retire(name)
            busy = lambda: any(e.name == name for e in self._retired)  # noqa: E731
            if not self._guard.wait_for(lambda: not busy(), wait):
                log.warning("dropping %r while %d requests still use it", name, self.users(name))
        try:
            yield
        finally:
            with self._guard:
                self._dropping.discard(name)

    def close(self) -> None:
        with self._guard:
            for name in list(self._open):
                self._retire(name)
