"""Bind check, Host check (DNS rebinding), body size limit and Bearer-key auth, as ASGI middleware.

Each middleware answers with an OpenAI-shaped error body; the key is compared in constant time and
never logged or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finesift.errors import InvalidRequest
from finesift.server.errors import error_response
from finesift.settings import ServerSettings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
#: Routes reachable without the key (liveness probes).
PUBLIC_PATHS = frozenset({"/health"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(server: ServerSettings) -> None:
    """Refuse configurations that would expose the models without a key."""
    key = server.api_key.get_secret_value() if server.api_key is not None else None
    if key is not None and not key.strip():
        raise InvalidRequest("the API key is empty; pass a non-empty --api-key (or FINESIFT_SERVER__API_KEY)")
    if key is None and not is_loopback(server.host):
        raise InvalidRequest(
            f"refusing to bind {server.host} without an API key: anyone on the network could use the server. "
            "Pass --api-key KEY (or FINESIFT_SERVER__API_KEY), or bind 127.0.0.1"
        )


def host_name(header: str) -> str:
    """The name part of a Host header: ``localhost:8000`` -> ``localhost``, ``[::1]:80`` -> ``[::1]``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class HostCheckMiddleware:
    """Refuse requests whose Host is not an allowed name (a DNS-rebinding page cannot use the server)."""

    def __init__(self, app: ASGIApp, *, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(name.lower() for name in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = host_name(_header(scope, b"host") or "")
            if name not in self.allowed:
                response = error_response(
                    400, "Host header not allowed; add the name with --allowed-host", code="host_not_allowed"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes, by Content-Length up front or while streaming."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"request body exceeds {self.limit} bytes; send fewer or shorter texts per request"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, self._message(), code="body_too_large")(scope, receive, send)


class BearerAuthMiddleware:
    """Every route except :data:`PUBLIC_PATHS` needs ``Authorization: Bearer <key>``."""

    def __init__(self, app: ASGIApp, *, key: str) -> None:
        self.app = app
        self._key = key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") not in PUBLIC_PATHS and not self._allowed(scope):
            response = error_response(
                401, "missing or invalid API key; send 'Authorization: Bearer <key>'", code="invalid_api_key"
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
        provided = token.strip().encode("utf-8")
        # compare_digest on the full values, whatever the scheme, keeps the timing independent of the key.
        return hmac.compare_digest(provided, self._key) and scheme.lower() == "bearer"
