"""The one table from the finesift error tree to HTTP status and OpenAI-shaped error bodies.

Bodies are ``{"error": {"message", "type", "code", "param"}}``: a stable ``type``/``code`` and a
one-line message; never a stack trace, a server path or a URL's credentials (the log keeps them).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finesift.errors import (
    BackendError,
    Conflict,
    DeadlineExceeded,
    FinesiftError,
    Forbidden,
    InvalidRequest,
    MissingDependency,
    NotFound,
    Overloaded,
    StoreError,
    TooLarge,
)

log = logging.getLogger(__name__)


class NotReady(FinesiftError):
    """The server is loading its models, draining for shutdown, or failed to load."""


# Most specific first: the first matching class decides (status, type, code).
ERROR_TABLE: list[tuple[type[FinesiftError], int, str, str]] = [
    (NotReady, 503, "service_unavailable_error", "not_ready"),
    (DeadlineExceeded, 503, "service_unavailable_error", "deadline_exceeded"),
    (Overloaded, 429, "rate_limit_error", "overloaded"),
    (Forbidden, 403, "permission_error", "forbidden"),
    (TooLarge, 413, "invalid_request_error", "too_large"),
    (InvalidRequest, 422, "invalid_request_error", "invalid_request"),
    (NotFound, 404, "not_found_error", "not_found"),
    (Conflict, 409, "conflict_error", "conflict"),
    (MissingDependency, 501, "server_error", "missing_dependency"),
    (BackendError, 502, "server_error", "backend_error"),
    (StoreError, 503, "service_unavailable_error", "store_unavailable"),
    (FinesiftError, 500, "server_error", "internal_error"),
]

#: Error ``type`` for HTTP-level failures raised outside the finesift tree.
HTTP_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
}
RETRY_STATUSES = {429, 503}
_TYPE_TAG = re.compile(r"[\[\](),-]|^(str|int|bool|list|dict|TextDocument)$")
#: An absolute path of two or more parts (POSIX, or a Windows drive path); not one inside a URL.
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~:/\]>-])(?:/[^\s'\"/:;,()<>|*?\[\]{}]+){2,}/?"  # /home/me/kb, not the /v1 of http://h/v1
    r"|\b[A-Za-z]:\\[^\s'\";,()<>|*?]+"  # C:\Users\me\kb
)
_URL_USERINFO = re.compile(r"(?<=://)[^/\s@]+@")
#: The server's own routes, which messages name on purpose.
ROUTE_PREFIXES = ("/v1/", "/v2/", "/health", "/ready", "/metrics", "/static/", "/docs", "/openapi.json")


def _short(match: re.Match[str]) -> str:
    path = match.group(0)
    if path.startswith(ROUTE_PREFIXES):
        return path
    return "…/" + re.split(r"[/\\]", path.rstrip("/\\"))[-1]


def scrub(message: str) -> str:
    """``message`` without server paths (each becomes ``…/<last part>``) or credentials in URLs."""
    return _ABSOLUTE_PATH.sub(_short, _URL_USERINFO.sub("***@", message))


def error_body(message: str, *, type: str, code: str, param: str | None = None) -> dict[str, Any]:
    """``{"error": {...}}`` with the message scrubbed (:func:`scrub`) and collapsed to one line."""
    text = " ".join(scrub(message).split())
    return {"error": {"message": text, "type": type, "code": code, "param": param}}


def error_response(
    status: int, message: str, *, code: str, param: str | None = None, retry_after: int | None = None
) -> JSONResponse:
    """A JSON error response; 429/503 carry ``Retry-After``."""
    kind = HTTP_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    headers = {"Retry-After": str(retry_after)} if retry_after and status in RETRY_STATUSES else None
    return JSONResponse(
        error_body(message, type=kind, code=code, param=param), status_code=status, headers=headers
    )


def classify(exc: FinesiftError) -> tuple[int, str, str]:
    """(status, type, code) for a finesift error, from :data:`ERROR_TABLE`."""
    return next((s, t, c) for cls, s, t, c in ERROR_TABLE if isinstance(exc, cls))


def _param(loc: tuple[Any, ...]) -> str | None:
    parts = [p for p in loc[1:] if not (isinstance(p, str) and _TYPE_TAG.search(p))] if loc else []
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _informative(error: dict[str, Any]) -> tuple[bool, bool, int]:
    kind = str(error.get("type", ""))
    return kind != "value_error", kind.endswith("_type"), -len(error.get("loc", ()))


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """A one-line message and the offending parameter from pydantic's error list.

    For a union (``str | list[str]``) pydantic reports one error per branch; our own checks
    (``value_error``), then errors of the branch whose type matched, then the deepest location
    say most about what is wrong.
    """
    first = min(errors, key=_informative)
    param = _param(tuple(first.get("loc", ())))
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "missing" and param is None:
        return "the request needs a JSON body", None
    return (f"{param}: {msg}" if param else msg), param


def install(app: FastAPI, *, retry_after: int) -> None:
    """Register the handlers that turn every failure into an OpenAI-shaped error body."""

    async def finesift_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FinesiftError)
        status, kind, code = classify(exc)
        if status >= 500:
            log.warning("%s %s -> %d: %s", request.method, request.url.path, status, exc)
        headers = {"Retry-After": str(retry_after)} if status in RETRY_STATUSES else None
        body = error_body(str(exc) or kind, type=kind, code=code)
        return JSONResponse(body, status_code=status, headers=headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = (errors[0].get("ctx") or {}).get("error", "")
            return error_response(
                400, f"the body is not valid JSON: {detail}".rstrip(": "), code="invalid_json"
            )
        message, param = validation_message(errors)
        return error_response(422, message, code="validation_error", param=param)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        response = error_response(exc.status_code, message, code=f"http_{exc.status_code}")
        response.headers.update(exc.headers or {})
        return response

    app.add_exception_handler(FinesiftError, finesift_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    # Not add_exception_handler(Exception, ...): Starlette re-raises after sending that handler's 500,
    # and uvicorn then cuts the keep-alive connection under the client's next request.
    app.add_middleware(UnexpectedErrorMiddleware)


class UnexpectedErrorMiddleware:
    """Any other exception: logged with its traceback, answered 500, and not raised further.

    Once a response has started, nothing else can be sent: an exception before
    its end is re-raised (the server must cut the connection, or the client would take a truncated
    body for a whole one); one after its end is only logged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = ended = False

        async def tracked(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
            if started and not ended:
                raise
            if not started:
                message = "internal server error; see the server log"
                await error_response(500, message, code="internal_error")(scope, receive, send)
