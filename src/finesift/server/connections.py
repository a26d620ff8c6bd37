"""Connection limits under uvicorn: a header deadline, a body read timeout, keep-alive and concurrency.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and, with ``limit_concurrency``,
answers 503 beyond a number of open connections; it has no deadline for a request's headers: a new
connection that sends nothing, or one header byte every few seconds, stays open for ever (slowloris).
:func:`guarded` adds that deadline to uvicorn's HTTP/1.1 protocol class (h11 or httptools); the
ASGI :class:`BodyTimeoutMiddleware` bounds the pause between two reads of a request body.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finesift.settings import ServerSettings

if TYPE_CHECKING:
    import uvicorn


class _HeaderDeadline:
    """Mixin for uvicorn's HTTP/1.1 protocols: close a connection whose request headers are not complete
    ``header_timeout`` seconds after the connection opened (first request) or after the first byte of
    a later one (the pause before it is uvicorn's keep-alive timeout), or exceed ``max_header_bytes``.

    uvicorn's protocols start a new ``cycle`` when a request's headers are complete: the connection
    waits for headers while its ``cycle`` is still the one it had when the last response ended.
    """

    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    # Set by uvicorn's protocol classes (h11_impl, httptools_impl).
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    _waiting: bool  # for the headers of a request
    _awaited: Any  # the cycle current when the wait began
    _header_bytes: int

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._deadline: asyncio.TimerHandle | None = None
        self._await_request()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if not self._waiting:
            return
        if self.cycle is not self._awaited:  # the headers are complete: a request is running
            self._waiting = False
            self._disarm()
            return
        if self._deadline is None:  # the first bytes of a request after a keep-alive pause
            self._arm()
        self._header_bytes += len(data)
        if self._header_bytes > self.max_header_bytes:
            self._expire()

    def on_response_complete(self) -> None:
        done = self.cycle
        super().on_response_complete()  # type: ignore[misc]
        # A pipelined request may have started inside the call; only an idle connection waits.
        if self.cycle is done and not self.transport.is_closing():
            self._await_request()

    def _await_request(self) -> None:
        self._waiting, self._awaited, self._header_bytes = True, self.cycle, 0

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


def guarded(base: type[asyncio.Protocol], server: ServerSettings) -> type[asyncio.Protocol]:
    """``base`` (a uvicorn HTTP/1.1 protocol class) with the header deadline of ``server``."""
    attrs = {"header_timeout": server.header_timeout, "max_header_bytes": server.max_header_bytes}
    return type(f"Guarded{base.__name__}", (_HeaderDeadline, base), attrs)


def uvicorn_config(app: ASGIApp, server: ServerSettings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` from the server settings (``options``: logging and the like)."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        http=guarded(AutoHTTPProtocol, server),
        timeout_keep_alive=server.keep_alive_timeout,
        limit_concurrency=server.max_connections,
        h11_max_incomplete_event_size=server.max_header_bytes,
        timeout_graceful_shutdown=int(server.shutdown_timeout) or None,
        server_header=False,
        **options,
    )


class BodyTimeoutMiddleware:
    """408 (and the connection closed) when a request body pauses longer than ``timeout`` seconds
    between two reads; once the body is complete, ``receive`` is left alone (it then waits for the
    client to go away, which streaming responses listen for)."""

    def __init__(self, app: ASGIApp, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = False

        async def timed() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request body paused for more than {self.timeout:g} s; send it without stalling",
                    headers={"Connection": "close"},
                ) from None
            complete = message.get("type") != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)
