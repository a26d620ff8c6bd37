"""The shared HTTP client: URL joining, retry policy, ordering by index, batching, secrets."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr

from finesift.errors import BackendError, InvalidRequest, NotFound
from finesift.runtime.http import (
    EndpointLimit,
    HttpClient,
    RetryPolicy,
    endpoint_url,
    in_batches,
    ordered_by_index,
)


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://h:1", "http://h:1/v1/embeddings"),
        ("http://h:1/", "http://h:1/v1/embeddings"),
        ("http://h:1/v1", "http://h:1/v1/embeddings"),
        ("http://h:1/v1/embeddings", "http://h:1/v1/embeddings"),
        (
            "https://api.example.com/compatible-mode/v1",
            "https://api.example.com/compatible-mode/v1/embeddings",
        ),
    ],
)
def test_endpoint_url_joins_once(base: str, expected: str) -> None:
    assert endpoint_url(base, "/v1/embeddings") == expected


@pytest.mark.parametrize("base", ["", "ftp://h/", "localhost:8000", "http://"])
def test_endpoint_url_refuses_bad_urls(base: str) -> None:
    with pytest.raises(InvalidRequest):
        endpoint_url(base, "/v1/rerank")


def test_retry_delay_grows_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_retries=5, backoff_s=0.5, max_backoff_s=3.0)
    assert [policy.delay(a) for a in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.delay(0, "2") == 2.0
    assert policy.delay(0, "99") == 3.0
    assert policy.delay(1, "Wed, 21 Oct 2015 07:28:00 GMT") == 1.0


def test_ordered_by_index_restores_order_and_checks_completeness() -> None:
    rows = [{"index": 2, "v": "c"}, {"index": 0, "v": "a"}, {"index": 1, "v": "b"}]
    assert [r["v"] for r in ordered_by_index(rows, 3, what="x")] == ["a", "b", "c"]
    with pytest.raises(BackendError, match="twice"):
        ordered_by_index([{"index": 0}, {"index": 0}], 2, what="x")
    with pytest.raises(BackendError, match="no x for input 1"):
        ordered_by_index([{"index": 0}], 2, what="x")
    with pytest.raises(BackendError, match="bad index"):
        ordered_by_index([{"index": 5}], 1, what="x")


def test_in_batches_halves_when_the_endpoint_refuses() -> None:
    seen: list[int] = []

    def send(chunk, offset):
        seen.append(len(chunk))
        if len(chunk) > 3:
            raise EndpointLimit("too big")
        return [offset + i for i in range(len(chunk))]

    assert in_batches(list(range(10)), 8, send) == list(range(10))
    assert seen == [8, 4, 2, 2, 2, 2, 2]


def _client(handler, **kwargs) -> HttpClient:
    slept: list[float] = []
    client = HttpClient(transport=httpx.MockTransport(handler), sleep=slept.append, **kwargs)
    client.slept = slept  # type: ignore[attr-defined]
    return client


def test_retries_429_and_5xx_then_succeeds() -> None:
    answers = iter([429, 500, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, json={"ok": status == 200})

    client = _client(handler, retry=RetryPolicy(max_retries=3, backoff_s=0.01))
    assert client.post_json("http://h/v1/x", {}) == {"ok": True}
    assert client.slept == [0.01, 0.02, 0.04]  # type: ignore[attr-defined]


def test_gives_up_after_max_retries_with_a_clear_message() -> None:
    client = _client(lambda r: httpx.Response(502, json={}), retry=RetryPolicy(max_retries=2, backoff_s=0))
    with pytest.raises(BackendError, match=r"still failing after 3 attempts \(HTTP 502\)"):
        client.post_json("http://h/v1/x", {})


def test_timeouts_are_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"ok": 1})

    assert _client(handler, retry=RetryPolicy(backoff_s=0)).post_json("http://h/x", {}) == {"ok": 1}


@pytest.mark.parametrize(
    ("status", "error", "pattern"),
    [
        (401, BackendError, "api_key"),
        (404, NotFound, "404"),
        (422, InvalidRequest, "too long"),
        (413, EndpointLimit, "too large"),
    ],
)
def test_client_errors_are_not_retried(status: int, error: type, pattern: str) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json={"error": {"message": "input too long"}})

    with pytest.raises(error, match=pattern):
        _client(handler).post_json("http://h/x", {})
    assert len(calls) == 1


def test_api_key_is_sent_but_never_logged_or_shown(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-123"
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(503 if len(seen) == 1 else 401, json={"error": {"message": "no"}})

    client = _client(handler, api_key=SecretStr(secret), retry=RetryPolicy(backoff_s=0))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendError) as info:
        client.post_json("http://h/x", {})
    assert seen == [f"Bearer {secret}"] * 2
    assert secret not in str(info.value)
    assert secret not in repr(client)
    assert secret not in caplog.text
