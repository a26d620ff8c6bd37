"""Parsing in worker processes, each file under a wall-clock limit and each process under a memory limit.

PDF, DOCX and HTML go to third-party or tokenizer code whose cost a small hostile file can blow up
(pypdf re-reading one shared 2 MB content stream for every page). A :class:`ParsePool` sends each
such file to one of a few worker processes (started with ``forkserver`` on Linux, ``spawn``
elsewhere, so no parent state or lock is inherited) and waits at most ``timeout_s``: past it, the
worker is killed and the file refused with :class:`~finesift.errors.TooLarge` naming
``kb.parse_timeout_s``. On Linux each worker caps its address space (``RLIMIT_AS``) at
``memory_mb``; a parse that needs more fails with ``MemoryError`` (or kills the worker) and is
refused naming ``kb.parse_memory_mb``. Plain text and code are parsed in the caller: their loaders
are linear and bounded by the character cap. Workers are started on first use and reused.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from finesift.errors import BackendError, FinesiftError
from finesift.ingest.limits import Caps, refusal
from finesift.ingest.loaders import CODE_TYPES, TEXT_TYPES, file_type_of, load_bytes
from finesift.types import Document

if TYPE_CHECKING:  # the workers import this module: keep pydantic out of them
    from finesift.settings import KBSettings

_KILL_WAIT_S = 5.0
_START_TIMEOUT_S = 120.0


def _limit_memory(memory_mb: int) -> None:
    try:
        import resource
    except ImportError:  # not on Windows
        return
    limit = memory_mb << 20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    with contextlib.suppress(ValueError, OSError):  # a platform that does not enforce it (macOS)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _rebuild(kind: type[FinesiftError], message: str) -> FinesiftError:
    """An error of ``kind`` with ``message`` (subclasses may take other constructor arguments)."""
    error = kind.__new__(kind)
    error.args = (message,)
    return error


def serve(conn: Connection, memory_mb: int) -> None:
    """A worker's loop: ``(data, source, caps)`` in, ``("ok", Document)`` or ``("error", type, msg)`` out."""
    _limit_memory(memory_mb)
    conn.send(("ready",))  # the parse timeout starts after the worker's own start-up
    while True:
        try:
            data, source, caps = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:
            conn.send(("memory",))
            return
        try:
            reply: tuple[Any, ...] = ("ok", load_bytes(data, source, caps))
        except FinesiftError as exc:
            reply = ("error", type(exc), str(exc))
        except MemoryError:
            conn.send(("memory",))
            return  # the heap may be in pieces: let the pool start a fresh worker
        del data
        conn.send(reply)


@dataclass
class _Worker:
    process: Any
    conn: Connection


class ParsePool:
    """Parses files in at most ``workers`` processes, one file per process at a time; thread-safe."""

    def __init__(self, *, workers: int, memory_mb: int) -> None:
        method = "forkserver" if sys.platform.startswith("linux") else "spawn"
        self._context: Any = multiprocessing.get_context(method)
        self.memory_mb = memory_mb
        #: Threads that wait for the workers: async callers run :meth:`parse` here, so a large upload
        #: waits in its own queue instead of filling the event loop's default executor.
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="finesift-parse")
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=serve, args=(child, self.memory_mb), name="finesift-parser", daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        try:
            if parent.poll(_START_TIMEOUT_S) and parent.recv() == ("ready",):
                return worker
        except (EOFError, OSError):
            pass
        self._stop(worker)
        raise BackendError(f"a parser process did not start within {_START_TIMEOUT_S:g} s; see the log")

    def _stop(self, worker: _Worker) -> None:
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(_KILL_WAIT_S)

    def parse(self, data: bytes, source: str, caps: Caps, *, timeout_s: float) -> Document:
        """``load_bytes(data, source, caps)`` in a worker, refused past ``timeout_s`` or the memory limit."""
        with self._slots:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.process.is_alive():
                worker = self._start()
            reply = self._ask(worker, (data, source, caps), source, timeout_s)
            with self._lock:
                if self._closed:
                    self._stop(worker)
                else:
                    self._idle.append(worker)
        if reply[0] == "ok":
            document: Document = reply[1]
            return document
        raise _rebuild(reply[1], reply[2])

    def _ask(self, worker: _Worker, request: tuple[Any, ...], source: str, timeout_s: float) -> Any:
        """Send ``request`` and wait for the reply; a worker that times out or dies is stopped."""
        try:
            worker.conn.send(request)
            if worker.conn.poll(timeout_s):
                reply = worker.conn.recv()
                if reply[0] != "memory":
                    return reply
                self._stop(worker)
                raise self._memory_refusal(source)
        except (EOFError, OSError) as exc:  # killed by the kernel (memory) or crashed in C code
            self._stop(worker)
            raise self._memory_refusal(source) from exc
        self._stop(worker)
        raise refusal(source, f"parsing took longer than {timeout_s:g} s", "kb.parse_timeout_s")

    def _memory_refusal(self, source: str) -> FinesiftError:
        what = f"parsing needs more than {self.memory_mb} MiB of memory"
        return refusal(source, what, "kb.parse_memory_mb")

    def close(self) -> None:
        """Stop the idle workers; a worker still parsing is stopped when it finishes."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            self._stop(worker)
        self.executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Parser:
    """How files become documents under one configuration: caps, and a pool for risky formats."""

    caps: Caps
    timeout_s: float
    pool: ParsePool | None

    def in_worker(self, source: str) -> bool:
        """Whether ``source`` is parsed in a worker process: PDF, DOCX and HTML when there is a pool."""
        kind = file_type_of(source)
        return self.pool is not None and kind not in TEXT_TYPES and kind not in CODE_TYPES

    def __call__(self, data: bytes, source: str) -> Document:
        """Parse ``data`` (named ``source``), in a worker when :meth:`in_worker` says so."""
        if self.pool is None or not self.in_worker(source):
            return load_bytes(data, source, self.caps)
        return self.pool.parse(data, source, self.caps, timeout_s=self.timeout_s)


_pools: dict[tuple[int, int], ParsePool] = {}
_pools_lock = threading.Lock()


def shared_pool(*, workers: int, memory_mb: int) -> ParsePool:
    """The process's pool for this size and memory limit, started on first use, stopped at exit."""
    with _pools_lock:
        key = (workers, memory_mb)
        if key not in _pools:
            if not _pools:
                atexit.register(close_pools)
            _pools[key] = ParsePool(workers=workers, memory_mb=memory_mb)
        return _pools[key]


def close_pools() -> None:
    """Stop every shared pool's workers."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def parser_for(kb: KBSettings) -> Parser:
    """The parser ``kb`` configures: its caps, and a shared pool unless ``parse_workers`` is 0."""
    pool = shared_pool(workers=kb.parse_workers, memory_mb=kb.parse_memory_mb) if kb.parse_workers else None
    return Parser(Caps.from_settings(kb), kb.parse_timeout_s, pool)
