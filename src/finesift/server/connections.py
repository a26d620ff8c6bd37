"""Connection limits under uvicorn: header deadline and size, body deadlines, keep-alive and concurrency.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``); it has no deadline for a
request's headers (a new connection that sends nothing, or one header byte every few seconds, stays
open for ever: slowloris) and no size cap on headers that arrive in one read. :func:`guarded` adds
both to uvicorn's HTTP/1.1 protocol class (h11 or httptools), and counts open connections: beyond
``server.max_connections``, :class:`ConnectionCapMiddleware` answers 503 to every route but the
probes, so ``/health`` and ``/ready`` answer even when slow clients hold every connection (uvicorn's
own ``limit_concurrency`` refuses them too). The ASGI :class:`BodyTimeoutMiddleware` bounds the pause
between two reads of a request body and the time of the whole body.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finesift.server.errors import error_body, error_response
from finesift.settings import ServerSettings

if TYPE_CHECKING:
    import uvicorn


#: Routes answered even when every connection is taken: the liveness and readiness probes.
PROBES = frozenset({"/health", "/ready"})
#: Seconds a connection refused for its headers' size stays open to drain what the client still sends.
_DRAIN_S = 1.0
#: What a request whose headers exceed ``server.max_header_bytes`` gets before the connection closes.
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n"
)


@dataclass
class ConnectionCount:
    """Open connections of one server (its protocol objects count themselves)."""

    open: int = 0


class _HeaderDeadline:
    """Mixin for uvicorn's HTTP/1.1 protocols: close a connection whose request headers are not complete
    ``header_timeout`` seconds after the connection opened (first request) or after the first byte of
    a later one (the pause before it is uvicorn's keep-alive timeout); answer 431 and close when they
    exceed ``max_header_bytes``, however they arrive (one read or many). Counts open connections.

    uvicorn's protocols start a new ``cycle`` when a request's headers are complete: the connection
    waits for headers while its ``cycle`` is still the one it had when the last response ended.
    """

    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    open_count: ConnectionCount = ConnectionCount()  # not ``connections``: uvicorn's own set
    # Set by uvicorn's protocol classes (h11_impl, httptools_impl).
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    _waiting: bool  # for the headers of a request
    _awaited: Any  # the cycle current when the wait began
    _header_bytes: int
    _tail: bytes  # the last bytes of the headers so far, to find their end across two reads
    _refused: bool  # answered 431: the rest of the connection is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.open_count.open += 1
        super().connection_made(transport)  # type: ignore[misc]
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._await_request()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open_count.open -= 1
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        waiting = self._waiting and self.cycle is self._awaited
        if waiting and self._headers_too_large(data):
            self._refuse_headers()
            return
        super().data_received(data)  # type: ignore[misc]
        if not self._waiting:
            return
        if self.cycle is not self._awaited:  # the headers are complete: a request is running
            self._waiting = False
            self._disarm()
        elif self._deadline is None:  # the first bytes of a request after a keep-alive pause
            self._arm()

    def _headers_too_large(self, data: bytes) -> bool:
        """Count ``data`` up to the end of the headers (a body may follow in the same read)."""
        seen = self._tail + data
        end = seen.find(b"\r\n\r\n")
        self._header_bytes += len(data) if end < 0 else end + 4 - len(self._tail)
        self._tail = seen[-3:]
        return self._header_bytes > self.max_header_bytes

    def _refuse_headers(self) -> None:
        """Answer 431, then drop what else arrives until the connection closes: closing at once with
        unread bytes would reset the connection before the client reads the answer."""
        self._waiting, self._refused = False, True
        self._disarm()
        message = f"the request headers exceed {self.max_header_bytes} bytes (server.max_header_bytes)"
        body = json.dumps(error_body(message, type="invalid_request_error", code="http_431")).encode()
        if self.transport.is_closing():
            return
        self.transport.write(_431 + b"content-length: %d\r\n\r\n" % len(body) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline = self.loop.call_later(_DRAIN_S, self._expire)

    def on_response_complete(self) -> None:
        done = self.cycle
        super().on_response_complete()  # type: ignore[misc]
        # A pipelined request may have started inside the call; only an idle connection waits.
        if self.cycle is done and not self.transport.is_closing():
            self._await_request()

    def _await_request(self) -> None:
        self._waiting, self._awaited, self._header_bytes, self._tail = True, self.cycle, 0, b""

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._disarm()
        if not self.transport.is_closing() and self.transport.get_protocol() is self:
            self.transport.close()


def guarded(
    base: type[asyncio.Protocol], server: ServerSettings, connections: ConnectionCount
) -> type[asyncio.Protocol]:
    """``base`` (a uvicorn HTTP/1.1 protocol class) with the header limits of ``server``, counting its
    open connections in ``connections``."""
    attrs = {
        "header_timeout": server.header_timeout,
        "max_header_bytes": server.max_header_bytes,
        "open_count": connections,
    }
    return type(f"Guarded{base.__name__}", (_HeaderDeadline, base), attrs)


def uvicorn_config(app: ASGIApp, server: ServerSettings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` from the server settings (``options``: logging and the like)."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    connections = ConnectionCount()
    capped = ConnectionCapMiddleware(
        app, connections=connections, limit=server.max_connections, retry_after=server.retry_after
    )
    return uvicorn.Config(
        capped,
        host=server.host,
        port=server.port,
        http=guarded(AutoHTTPProtocol, server, connections),
        timeout_keep_alive=server.keep_alive_timeout,
        h11_max_incomplete_event_size=server.max_header_bytes,
        timeout_graceful_shutdown=int(server.shutdown_timeout) or None,
        server_header=False,
        **options,
    )


class ConnectionCapMiddleware:
    """503 with ``Retry-After`` for a request while more than ``limit`` connections are open (this
    one included), except on the probes (:data:`PROBES`), which are cheap and must keep answering."""

    def __init__(self, app: ASGIApp, *, connections: ConnectionCount, limit: int, retry_after: int) -> None:
        self.app = app
        self.connections = connections
        self.limit = limit
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.connections.open > self.limit and scope["path"] not in PROBES:
            message = f"more than {self.limit} connections are open (server.max_connections); retry shortly"
            response = error_response(503, message, code="overloaded", retry_after=self.retry_after)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyTimeoutMiddleware:
    """408 (and the connection closed) when a request body pauses longer than ``timeout`` seconds
    between two reads, or is not complete ``deadline`` seconds after the request began (one byte
    every few seconds never pauses long); once the body is complete, ``receive`` is left alone (it
    then waits for the client to go away, which streaming responses listen for)."""

    def __init__(self, app: ASGIApp, *, timeout: float, deadline: float) -> None:
        self.app = app
        self.timeout = timeout
        self.deadline = deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        complete, ends = False, loop.time() + self.deadline

        async def timed() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            left = ends - loop.time()
            try:
                message = await asyncio.wait_for(receive(), min(self.timeout, max(left, 0.0)))
            except TimeoutError:
                raise self._timeout(paused=left > self.timeout) from None
            complete = message.get("type") != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)

    def _timeout(self, *, paused: bool) -> HTTPException:
        if paused:
            what = f"paused for more than {self.timeout:g} s; send it without stalling (server.body_timeout)"
        else:
            what = f"took more than {self.deadline:g} s in all; send it faster (server.body_deadline)"
        return HTTPException(408, f"the request body {what}", headers={"Connection": "close"})
