"""Connecting to Milvus, and what differs on Milvus Lite (see :mod:`finesift.store.milvus`).

**Milvus Lite searches unflushed rows slowly.** Milvus Lite (checked with 3.2.2, the pure-Python engine
of ``milvus-lite server`` and of ``.db`` URIs) keeps inserted rows in a memtable until 128 MB of them
piled up (``MILVUS_LITE_MEMTABLE_MEMORY_LIMIT_BYTES``), about 20,000 chunks at dimension 1024. Every
search scans the whole memtable in Python: a dense search converts each row's vector to a Python list
(``MemTable.to_search_snapshot``), a BM25 search rebuilds the memtable's sparse index. At 10,000
chunks of dimension 1024 that is about 1 s of the server's CPU per query, and a loaded machine made
it look like a hang. Flushed rows live in segments with their own HNSW and sparse indexes, searched in
milliseconds. So on Milvus Lite each commit ends with a flush (:func:`seal`); Milvus standalone and
cluster seal and index growing segments themselves and rate-limit manual flushes, so they get none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from finesift.errors import MissingDependency

log = logging.getLogger(__name__)
#: Seconds a client waits for the server to answer its first call (pymilvus's default, 10 s, is too short
#: for a busy machine: the connection then fails with "server unavailable" although the server is up).
CONNECT_TIMEOUT_S = 60.0
#: gRPC keepalive no more often than a default gRPC server accepts (5 min): pymilvus pings every 10 s, which a
#: milvus-lite server answers with GOAWAY "too_many_pings", leaving a shared connection that cannot recover.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 300_000}


def quiet_client_logs() -> None:
    """Silence pymilvus's RPC error logs (each error reaches the caller as a StoreError) and the
    in-process Milvus Lite server's log of an RPC it does not implement (harmless, logged per call)."""
    for name in ("pymilvus", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise MissingDependency("pymilvus", "milvus", "needed by the Milvus store") from exc
    return pymilvus


def connect_client(uri: str, token: str | None) -> Any:
    """A ``MilvusClient``; when pymilvus's shared connection to ``uri`` is broken, a dedicated one."""
    pymilvus = _pymilvus()
    quiet_client_logs()  # after the import, which sets pymilvus's log levels
    kwargs = {"uri": uri, "token": token or "", "timeout": CONNECT_TIMEOUT_S, "grpc_options": GRPC_OPTIONS}
    try:
        return pymilvus.MilvusClient(**kwargs)
    except pymilvus.exceptions.MilvusException:
        return pymilvus.MilvusClient(**kwargs, dedicated=True)


def is_lite(client: Any) -> bool:
    """Whether ``client`` talks to Milvus Lite (its version reads ``milvus_lite-3.2.2``)."""
    return str(client.get_server_version()).startswith("milvus_lite")


def seal(client: Any, collections: Iterable[str]) -> None:
    """Flush ``collections`` on Milvus Lite, so that searches use indexed segments (see the module doc).

    The commit is already durable (Milvus Lite's write-ahead log): a failed flush costs speed only, and
    is logged, not raised.
    """
    for name in collections:
        try:
            client.flush(name)
        except Exception as exc:
            log.warning(
                "Milvus Lite: flushing %s failed (searches scan it unindexed until it does): %s", name, exc
            )
