"""The HTTP client every remote backend shares: timeouts, retries with backoff, clear errors.

Retries cover what a healthy endpoint answers while busy (429, 500, 502, 503, 504) and transport
failures (connection refused, reset, timeouts); ``Retry-After`` is honoured up to a cap. Other
4xx answers are the caller's fault and surface at once. The API key is a ``SecretStr`` that is put
into the ``Authorization`` header of each request and nowhere else: never logged, never in an error.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import SecretStr

from finesift.errors import BackendError, InvalidRequest, MissingDependency, NotFound

log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts; waits grow ``backoff_s * 2**attempt`` up to ``max_backoff_s``."""

    max_retries: int = 4
    backoff_s: float = 0.25
    max_backoff_s: float = 8.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff_s)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return float(min(self.backoff_s * (2**attempt), self.max_backoff_s))


class EndpointLimit(BackendError):
    """The endpoint refused a request as too large (413, or a batch-size complaint): send fewer inputs."""


def endpoint_url(base: str, path: str) -> str:
    """Join ``base`` and an API ``path`` like ``/v1/embeddings``, tolerating a base that ends in ``/v1``."""
    if not isinstance(base, str) or not base.strip():
        raise InvalidRequest("a remote backend needs a URL (set --url or FINESIFT_EMBEDDING__URL)")
    parts = urlsplit(base.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"remote URL must be http(s)://host[:port][/path], not {base!r}")
    root = base.strip().rstrip("/")
    if root.endswith(path):
        return root
    first, _, rest = path.lstrip("/").partition("/")
    if rest and root.endswith("/" + first):
        return f"{root}/{rest}"
    return root + path


def _import_httpx(extra: str) -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise MissingDependency("httpx", extra, "needed by remote backends") from exc
    return httpx


class HttpClient:
    """A synchronous JSON-over-HTTP client for one endpoint host."""

    def __init__(
        self,
        *,
        api_key: SecretStr | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        extra: str = "openai",
    ) -> None:
        httpx = _import_httpx(extra)
        self._httpx = httpx
        self._api_key = api_key
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s), transport=transport, follow_redirects=False
        )
        # Backends rarely close their client explicitly; close its sockets when it is collected.
        weakref.finalize(self, self._client.close)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"HttpClient(timeout_s={self.timeout_s}, retries={self.retry.max_retries}, api_key={key})"

    def close(self) -> None:
        self._client.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key is not None and self._api_key.get_secret_value():
            headers["Authorization"] = "Bearer " + self._api_key.get_secret_value()
        return headers

    def post_json(self, url: str, payload: dict[str, Any]) -> Any:
        """POST ``payload`` as JSON and return the decoded JSON answer, retrying transient failures."""
        attempt = 0
        while True:
            failure, retry_after = self._attempt(url, payload)
            if not isinstance(failure, _Transient):
                return failure
            self._wait_or_fail(url, attempt, failure, retry_after)
            attempt += 1

    def _wait_or_fail(self, url: str, attempt: int, failure: _Transient, retry_after: str | None) -> None:
        if attempt >= self.retry.max_retries:
            raise BackendError(
                f"{_where(url)} still failing after {attempt + 1} attempts ({failure.reason}); "
                "check the server, or raise timeout_s / max_retries"
            )
        wait = self.retry.delay(attempt, retry_after)
        log.info("%s: %s; retry %d in %.2fs", _where(url), failure.reason, attempt + 1, wait)
        self._sleep(wait)

    def stream_lines(self, url: str, payload: dict[str, Any]) -> Iterator[str]:
        """POST ``payload`` and yield the answer's lines as they arrive (server-sent events).

        Failures before the answer starts are retried like :meth:`post_json`; once lines have been
        yielded a failure raises :class:`BackendError` (a partial stream cannot be replayed).
        ``timeout_s`` bounds the connection and each wait between bytes, not the whole answer.
        """
        attempt = 0
        while True:
            with ExitStack() as stack:
                opened, retry_after = self._open_stream(stack, url, payload)
                if not isinstance(opened, _Transient):
                    yield from self._lines(url, opened)
                    return
            self._wait_or_fail(url, attempt, opened, retry_after)
            attempt += 1

    def _open_stream(self, stack: ExitStack, url: str, payload: dict[str, Any]) -> tuple[Any, str | None]:
        httpx = self._httpx
        headers = {**self._headers(), "Accept": "text/event-stream"}
        try:
            response = stack.enter_context(self._client.stream("POST", url, json=payload, headers=headers))
        except httpx.TimeoutException:
            return _Transient(f"timed out after {self.timeout_s:g}s"), None
        except httpx.TransportError as exc:
            return _Transient(f"connection failed: {type(exc).__name__}"), None
        if response.status_code in RETRY_STATUS:
            return _Transient(f"HTTP {response.status_code}"), response.headers.get("retry-after")
        if response.status_code >= 400:
            response.read()
            raise _client_error(url, response.status_code, _message(response))
        return response, None

    def _lines(self, url: str, response: Any) -> Iterator[str]:
        httpx = self._httpx
        try:
            yield from response.iter_lines()
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"{_where(url)} stopped sending for {self.timeout_s:g}s in the middle of its answer; "
                "check the server, or raise timeout_s"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendError(
                f"{_where(url)} dropped the connection in the middle of its answer ({type(exc).__name__})"
            ) from exc

    def get_json(self, url: str) -> Any:
        """GET ``url`` and return the decoded JSON answer, retrying transient failures."""
        attempt = 0
        while True:
            failure, retry_after = self._attempt(url, None)
            if not isinstance(failure, _Transient):
                return failure
            self._wait_or_fail(url, attempt, failure, retry_after)
            attempt += 1

    def _attempt(self, url: str, payload: dict[str, Any] | None) -> tuple[Any, str | None]:
        """One request: POST ``payload`` as JSON, or GET when it is None."""
        httpx = self._httpx
        try:
            if payload is None:
                response = self._client.get(url, headers=self._headers())
            else:
                response = self._client.post(url, json=payload, headers=self._headers())
        except httpx.TimeoutException:
            return _Transient(f"timed out after {self.timeout_s:g}s"), None
        except httpx.TransportError as exc:
            return _Transient(f"connection failed: {type(exc).__name__}"), None
        if response.status_code in RETRY_STATUS:
            return _Transient(f"HTTP {response.status_code}"), response.headers.get("retry-after")
        if response.status_code >= 400:
            raise _client_error(url, response.status_code, _message(response))
        try:
            return response.json(), None
        except ValueError as exc:
            raise BackendError(
                f"{_where(url)} answered HTTP {response.status_code} with a body that is not JSON"
            ) from exc


@dataclass(frozen=True)
class _Transient:
    reason: str


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _message(response: Any) -> str:
    """The server's error message, from OpenAI-, Cohere- or Ollama-shaped bodies, kept short."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    if isinstance(body, dict):
        err = body.get("error", body.get("message", body.get("detail", body)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return " ".join(str(err).split())[:300]
    return " ".join(str(body).split())[:300]


def _client_error(url: str, status: int, message: str) -> BackendError | InvalidRequest | NotFound:
    where = _where(url)
    if status == 413 or (status in (400, 422) and "batch" in message.lower()):
        return EndpointLimit(f"{where} refused the request as too large (HTTP {status}: {message})")
    if status in (401, 403):
        return BackendError(
            f"{where} refused the credentials (HTTP {status}); set the backend's api_key setting"
        )
    if status == 404:
        return NotFound(
            f"{where} answered 404 ({message}); check the URL and the model name the server serves"
        )
    if status in (400, 422):
        return InvalidRequest(f"{where} rejected the input (HTTP {status}): {message}")
    return BackendError(f"{where} answered HTTP {status}: {message}")


def in_batches(
    items: Sequence[T], batch_size: int, send: Callable[[Sequence[T], int], list[Any]]
) -> list[Any]:
    """Call ``send(chunk, offset)`` over chunks of at most ``batch_size`` items; results concatenated.

    When the endpoint refuses a chunk as too large, the chunk size is halved (down to one item) and
    the rest of the call keeps the smaller size.
    """
    out: list[Any] = []
    size, start = max(1, batch_size), 0
    while start < len(items):
        chunk = items[start : start + size]
        try:
            out.extend(send(chunk, start))
        except EndpointLimit:
            if size == 1:
                raise
            size = max(1, size // 2)
            log.info("endpoint refused %d inputs per request; retrying with %d", len(chunk), size)
            continue
        start += len(chunk)
    return out


def ordered_by_index(rows: Sequence[Any], count: int, *, what: str) -> list[Any]:
    """Put ``rows`` (dicts with an ``index`` key) back in input order; every index 0..count-1 exactly once."""
    slots: list[Any] = [None] * count
    for row in rows:
        index = row.get("index") if isinstance(row, dict) else None
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise BackendError(
                f"the endpoint returned a {what} with a bad index {index!r} (expected 0..{count - 1})"
            )
        if slots[index] is not None:
            raise BackendError(f"the endpoint returned index {index} twice in its {what}s")
        slots[index] = row
    missing = [i for i, row in enumerate(slots) if row is None]
    if missing:
        raise BackendError(f"the endpoint returned no {what} for input {missing[0]} ({len(missing)} missing)")
    return slots
