"""Pure pieces of issue 17's hardening: same-origin test, metric labels, scrubbed error messages."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from finesift.server.errors import error_body, scrub
from finesift.server.metrics import method_label, route_label
from finesift.server.security import same_origin


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://LOCALHOST:8000", "localhost:8000", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("https://kb.example", "kb.example:443", True),
        ("http://kb.example", "kb.example", True),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("https://127.0.0.1:8000", "127.0.0.1", False),
        ("http://localhost:8000", "127.0.0.1:8000", False),
        ("null", "127.0.0.1:8000", False),
        ("ftp://127.0.0.1:8000", "127.0.0.1:8000", False),
        ("http://127.0.0.1:99999", "127.0.0.1:99999", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_known_methods_keep_their_label(method: str) -> None:
    assert method_label(method) == method


@pytest.mark.parametrize("method", ["BREW", "get", "X" * 1000, "", "PROPFIND"])
def test_other_methods_share_one_label(method: str) -> None:
    assert method_label(method) == "other"


def test_route_label_is_the_template_or_unmatched() -> None:
    class Route:
        path = "/v1/kbs/{kb}/search"

    assert (
        route_label({"type": "http", "path": "/v1/kbs/a/search", "route": Route()}) == "/v1/kbs/{kb}/search"
    )
    assert route_label({"type": "http", "path": "/random/path"}) == "unmatched"


@pytest.mark.parametrize(
    ("message", "scrubbed"),
    [
        (
            "dense search failed: No such file or directory: '/home/me/.local/share/finesift/kbs/hb/x.lance'",
            "dense search failed: No such file or directory: '…/x.lance'",
        ),
        ("/srv/kbs/hb is not a finesift LanceDB store", "…/hb is not a finesift LanceDB store"),
        ("the store in C:\\Users\\me\\kbs holds 64-dim vectors", "the store in …/kbs holds 64-dim vectors"),
        (
            "cannot connect to PostgreSQL at postgresql://me:pw@db:5432/kb",
            "cannot connect to PostgreSQL at postgresql://***@db:5432/kb",
        ),
        # What must stay: the server's routes, URLs, media types, a lone slash.
        ("create it with POST /v1/kbs, or GET /v1/kbs/{kb}/search", None),
        ("the endpoint http://127.0.0.1:11434/v1/chat failed", None),
        ("send application/json, tokens/s, a / b", None),
    ],
)
def test_scrub(message: str, scrubbed: str | None) -> None:
    assert scrub(message) == (scrubbed or message)


def test_every_error_body_is_scrubbed() -> None:
    body = error_body("the KB at /var/lib/finesift/kbs/hb failed", type="server_error", code="x")
    assert body["error"]["message"] == "the KB at …/hb failed"


def _run_body_timeout(messages: list[dict], *, after_body: float, deadline: float = 60.0) -> list[dict]:
    """Feed ``messages`` (then nothing) to an app behind BodyTimeoutMiddleware(0.05 s) that reads the
    body and then waits ``after_body`` seconds for more (as a streaming response waits for disconnect)."""
    import asyncio

    from finesift.server.connections import BodyTimeoutMiddleware

    received: list[dict] = []
    queue: asyncio.Queue[dict] = asyncio.Queue()

    async def app(scope, receive, send) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        try:
            await asyncio.wait_for(receive(), after_body)
        except TimeoutError:
            received.append({"type": "still-open"})

    async def main() -> None:
        for message in messages:
            queue.put_nowait(message)
        middleware = BodyTimeoutMiddleware(app, timeout=0.05, deadline=deadline)
        await middleware({"type": "http"}, queue.get, lambda m: None)

    asyncio.run(main())
    return received


def test_body_timeout_leaves_a_complete_body_alone() -> None:
    received = _run_body_timeout([{"type": "http.request", "body": b"x", "more_body": False}], after_body=0.3)
    assert received[-1] == {"type": "still-open"}  # waiting past the timeout after the body is fine


def test_body_timeout_stops_a_stalled_body() -> None:
    from starlette.exceptions import HTTPException

    with pytest.raises(HTTPException) as caught:
        _run_body_timeout([{"type": "http.request", "body": b"x", "more_body": True}], after_body=0.3)
    assert caught.value.status_code == 408 and caught.value.headers == {"Connection": "close"}


def test_uvicorn_config_carries_every_connection_setting() -> None:
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from finesift.server.connections import uvicorn_config
    from finesift.settings import ServerSettings

    server = ServerSettings(
        header_timeout=3.5,
        keep_alive_timeout=7,
        max_header_bytes=4096,
        max_connections=9,
        shutdown_timeout=12,
    )
    config = uvicorn_config(lambda scope, receive, send: None, server)
    # The connection cap is finesift's own (the probes stay answerable), not uvicorn's.
    assert (config.timeout_keep_alive, config.limit_concurrency) == (7, None)
    assert config.app.limit == 9
    assert (config.h11_max_incomplete_event_size, config.timeout_graceful_shutdown) == (4096, 12)
    assert issubclass(config.http, AutoHTTPProtocol) and config.http is not AutoHTTPProtocol
    assert (config.http.header_timeout, config.http.max_header_bytes) == (3.5, 4096)
    assert config.server_header is False
