"""Bind check, Host check (DNS rebinding), cross-site write refusal, body size limit and Bearer-key
auth, as ASGI middleware.

Each middleware answers with an OpenAI-shaped error body; the key is compared in constant time and
never logged or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finesift.errors import InvalidRequest
from finesift.server.errors import error_response
from finesift.settings import ServerSettings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
#: Routes reachable without the key: the liveness and readiness probes (they say only "ok" or the
#: phase), and the search page's static files (they hold no data; the page asks for the key and sends
#: it with every API call).
PUBLIC_PATHS = frozenset({"/health", "/ready", "/"})
PUBLIC_PREFIXES = ("/static/",)
#: Multipart uploads, whose body limit is ``max_upload_bytes`` instead of ``max_body_bytes``.
UPLOAD_PATH = re.compile(r"/v1/kbs/[^/]+/documents")
#: Methods that cannot change state; every other method is a write and gets the cross-site check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: ``Sec-Fetch-Site`` values a browser sends for the server's own pages and for typed-in addresses.
OWN_SITE = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


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


def _authority(host: str, port: int | None) -> tuple[str, int | None]:
    return host.lower().strip("[]"), port


def _host_authority(header: str, scheme: str) -> tuple[str, int | None] | None:
    """(name, port) of a Host header, the port defaulted from ``scheme``; None when malformed."""
    try:
        parts = urlsplit(f"//{header.strip()}")
        return _authority(parts.hostname or "", parts.port or DEFAULT_PORTS.get(scheme))
    except ValueError:
        return None


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (``scheme://name[:port]``) names the server the ``host`` header reached."""
    try:
        parts = urlsplit(origin)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return False
    return _host_authority(host, parts.scheme) == _authority(parts.hostname, port)


class CrossSiteMiddleware:
    """Refuse writes (POST, PUT, PATCH, DELETE, ...) that a browser sends on behalf of another site.

    A page on any site can POST a multipart form here without a CORS preflight, so CORS alone does not
    stop it. Browsers mark such requests: ``Sec-Fetch-Site`` (``cross-site``, ``same-site``) and
    ``Origin``. A write passes when the browser says it comes from this server's own page
    (``Sec-Fetch-Site: same-origin`` or ``none``, or an ``Origin`` matching the ``Host``), from an origin
    in ``cors_origins``, or when neither header is present (curl, SDKs and other non-browser clients).
    """

    def __init__(self, app: ASGIApp, *, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method", "GET") not in SAFE_METHODS:
            origin = _header(scope, b"origin")
            if not self._allowed(scope, origin):
                shown = (origin or "another site")[:100]
                message = (
                    f"cross-site request refused: a page from {shown} may not change this server; "
                    "to allow that origin start the server with --cors-origin ORIGIN "
                    "(FINESIFT_SERVER__CORS_ORIGINS)"
                )
                await error_response(403, message, code="cross_site_refused")(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope, origin: str | None) -> bool:
        fetch_site = (_header(scope, b"sec-fetch-site") or "").strip().lower()
        if fetch_site in OWN_SITE:
            return True
        if origin is None:
            # No Origin: not a browser's cross-origin write (browsers send it on every one).
            return not fetch_site
        origin = origin.strip().rstrip("/").lower()
        if "*" in self.origins or origin in self.origins:
            return True
        return fetch_site == "" and same_origin(origin, _header(scope, b"host") or "")


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes, by Content-Length up front or while streaming."""

    def __init__(self, app: ASGIApp, *, limit: int, upload_limit: int | None = None) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit or limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        if scope.get("method") == "POST" and UPLOAD_PATH.fullmatch(scope.get("path", "")):
            limit = self.upload_limit
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await error_response(413, self._message(limit), code="body_too_large")(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, self._message(limit))
            return message

        await self.app(scope, limited, send)

    def _message(self, limit: int) -> str:
        if limit != self.limit:
            return f"upload exceeds {limit} bytes; send fewer or smaller files per request"
        return f"request body exceeds {limit} bytes; send fewer or shorter texts per request"


class BearerAuthMiddleware:
    """Every route except :data:`PUBLIC_PATHS` needs ``Authorization: Bearer <key>``."""

    def __init__(self, app: ASGIApp, *, key: str) -> None:
        self.app = app
        self._key = key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_public(scope.get("path", "")) and not self._allowed(scope):
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
