"""The one loopback HTTP server the test doubles run on: a thread, 127.0.0.1, a free port, quiet.

:mod:`finesift.testing.http` (embeddings, rerank, Ollama), :mod:`finesift.testing.chat` (answers) and
:mod:`finesift.testing.synth_chat` (``finesift synth``) each subclass :class:`LoopbackHandler` for
their protocol and start it with :func:`serve`; it binds nowhere else.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

S = TypeVar("S")


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    #: What the handler reads and records (faults, requests seen); one object per server.
    state: Any


class LoopbackHandler(BaseHTTPRequestHandler):
    """Quiet (tests read the state, not logs), with JSON and raw replies that survive a client that left."""

    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``state.requests`` instead."""

    def send_bytes(self, status: int, data: bytes, kind: str = "application/json") -> None:
        """One complete response; 429 says ``Retry-After: 0``; a vanished client is not an error."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def send_json(self, status: int, payload: Any) -> None:
        self.send_bytes(status, json.dumps(payload).encode())


@contextmanager
def serve(
    handler: type[LoopbackHandler], state: S, *, port: int = 0, path: str = ""
) -> Iterator[tuple[str, S]]:
    """Serve ``handler`` on 127.0.0.1 (a free port by default); yields ``(base URL + path, state)``."""
    server = LoopbackServer(("127.0.0.1", port), handler)
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
