"""A small JSON client for a running ``finesift serve``: the same request, sync or async.

The integrations speak to three routes: ``/v1/embeddings``, ``/v1/rerank`` and
``/v1/kbs/{kb}/search``. Busy answers (429, 502, 503, 504) and dropped connections are retried a
few times (honouring ``Retry-After``, capped); every other failure becomes the error of finesift's
tree that the server's status stands for, with the server's one-line message. The API key travels
in the ``Authorization`` header only; it is never logged or repeated in an error.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

from finesift.errors import (
    BackendError,
    Conflict,
    FinesiftError,
    InvalidRequest,
    MissingDependency,
    NotFound,
    Overloaded,
    StoreError,
)

RETRY_STATUS = frozenset({429, 502, 503, 504})
MAX_WAIT_S = 5.0


def server_url(url: object) -> str:
    """``url`` checked as ``http(s)://host[:port][/prefix]``, without a trailing slash."""
    text = url.strip() if isinstance(url, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"a finesift server URL looks like http://127.0.0.1:8000, not {url!r}")
    root = text.rstrip("/")
    return root.removesuffix("/v1") if root.endswith("/v1") else root


def kb_path(kb: str) -> str:
    """The search route of knowledge base ``kb`` (the name quoted as a path segment)."""
    if not isinstance(kb, str) or not kb.strip():
        raise InvalidRequest("name the knowledge base to search (kb='handbook')")
    return f"/v1/kbs/{quote(kb, safe='')}/search"


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise MissingDependency("httpx", "remote", "needed to reach a finesift server") from exc
    return httpx


class ServerClient:
    """JSON ``POST``s to one finesift server; :meth:`post` and :meth:`apost` send the same request."""

    def __init__(
        self,
        url: str,
        *,
        api_key: SecretStr | str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
    ) -> None:
        self.url = server_url(url)
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"ServerClient({self.url!r}, api_key={key})"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key is not None and self._api_key.get_secret_value():
            headers["Authorization"] = "Bearer " + self._api_key.get_secret_value()
        return headers

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """The decoded JSON answer to ``POST path``; errors of finesift's tree otherwise."""
        httpx = _httpx()
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            for attempt in range(self.max_retries + 1):
                try:
                    response = client.post(self.url + path, json=payload, headers=self._headers())
                except httpx.TransportError as exc:
                    time.sleep(self._retry_or_raise(path, attempt, exc))
                    continue
                wait = self._wait(response, attempt)
                if wait is None:
                    return decode(path, response)
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def apost(self, path: str, payload: dict[str, Any]) -> Any:
        """:meth:`post` without blocking the event loop."""
        httpx = _httpx()
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            for attempt in range(self.max_retries + 1):
                try:
                    response = await client.post(self.url + path, json=payload, headers=self._headers())
                except httpx.TransportError as exc:
                    await asyncio.sleep(self._retry_or_raise(path, attempt, exc))
                    continue
                wait = self._wait(response, attempt)
                if wait is None:
                    return decode(path, response)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_or_raise(self, path: str, attempt: int, exc: Exception) -> float:
        if attempt >= self.max_retries:
            raise BackendError(
                f"cannot reach the finesift server at {self.url}{path} ({type(exc).__name__}); "
                "start it with `finesift serve`, or check the URL"
            ) from exc
        return min(0.25 * 2**attempt, MAX_WAIT_S)

    def _wait(self, response: Any, attempt: int) -> float | None:
        """Seconds to wait before retrying a busy answer; ``None`` when the answer is final."""
        if response.status_code not in RETRY_STATUS or attempt >= self.max_retries:
            return None
        try:
            return min(max(float(response.headers.get("retry-after", "")), 0.0), MAX_WAIT_S)
        except ValueError:
            return min(0.25 * 2**attempt, MAX_WAIT_S)


#: The error each status of the server stands for (``server/errors.py`` maps the tree the other way).
STATUS_ERRORS: dict[int, type[FinesiftError]] = {
    400: InvalidRequest,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: Overloaded,
    503: StoreError,
}


def decode(path: str, response: Any) -> Any:
    """The JSON body of a 2xx answer, else the tree's error for the status, with the server's message."""
    status = response.status_code
    if status < 300:
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"the finesift server answered {path} with a body that is not JSON") from exc
    message = error_message(response)
    if status in (401, 403):
        raise BackendError(f"the finesift server refused {path} (HTTP {status}: {message}); pass api_key=")
    error = STATUS_ERRORS.get(status, BackendError)
    raise error(f"the finesift server answered {path} with HTTP {status}: {message}")


def error_message(response: Any) -> str:
    """The message of an OpenAI-shaped error body, on one line and short."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        err = err.get("message", err)
    return " ".join(str(err).split())[:300]
