"""Issue 17, item 7: stalled connections are closed and open connections are bounded.

A real uvicorn on 127.0.0.1, configured as ``finesift serve`` configures it (:func:`uvicorn_config`),
with short limits. Raw sockets play the slow clients; every wait is bounded by a socket timeout
several times the limit, so a connection the server never closes fails the test instead of hanging.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest
from server_support import fake_settings, live_server, wait_ready

from finesift.server.app import create_app
from finesift.settings import Settings

LIMIT = 0.5  # seconds: header and body timeouts of the server under test
DEADLINE = 1.5  # seconds: the whole body's deadline
PATIENCE = 8.0  # seconds a test waits for the server to close a stalled connection


def settings(**server) -> Settings:
    limits = {
        "header_timeout": LIMIT,
        "body_timeout": LIMIT,
        "body_deadline": DEADLINE,
        "keep_alive_timeout": 1,
    }
    return fake_settings(**{**limits, **server})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    conf = settings()
    app = create_app(conf)
    with live_server(app, settings=conf) as (url, _):
        wait_ready(app)
        yield "127.0.0.1", int(url.rsplit(":", 1)[1])


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=PATIENCE)
    sock.settimeout(PATIENCE)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the server closes the connection; (closed in time, what it sent)."""
    began, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return False, data
    except ConnectionResetError:
        pass
    return time.monotonic() - began < seconds, data


def test_an_idle_new_connection_is_closed(server) -> None:
    with connect(server) as sock:
        closed, data = closed_within(sock, PATIENCE)
    assert closed and data == b""


def test_headers_sent_slowly_are_cut_off_at_the_deadline(server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        began = time.monotonic()
        try:
            while time.monotonic() - began < PATIENCE:  # one header line every 0.1 s: never complete
                sock.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed, data = closed_within(sock, PATIENCE)
        assert closed and time.monotonic() - began < PATIENCE, "the slow-header connection stayed open"
        assert b"200 OK" not in data


def test_a_keep_alive_connection_trickling_its_next_request_is_closed(server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert b"200 OK" in sock.recv(65536)
        began = time.monotonic()
        try:
            for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n":
                sock.sendall(bytes([byte]))  # each byte resets uvicorn's keep-alive timer, not the deadline
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_within(sock, PATIENCE)[0] and time.monotonic() - began < PATIENCE


def refused_431(data: bytes) -> None:
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431"), data[:200]
    assert "server.max_header_bytes" in json.loads(body)["error"]["message"]


def test_oversized_headers_are_refused(server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000)
        closed, data = closed_within(sock, PATIENCE)
    assert closed
    refused_431(data)


def test_oversized_headers_in_one_read_are_431(server) -> None:
    """100 KB of complete headers in one send: uvicorn alone answered 200."""
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        closed, data = closed_within(sock, PATIENCE)
    assert closed
    refused_431(data)


def test_oversized_headers_trickled_are_431(server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for i in range(20):  # 20 KB in 1 KB lines, well inside the header deadline
                sock.sendall(b"X-Line-%d: " % i + b"a" * 1000 + b"\r\n")
                time.sleep(0.005)
            sock.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed, data = closed_within(sock, PATIENCE)
    assert closed
    refused_431(data)


def test_headers_at_the_cap_with_a_body_in_the_same_read_are_accepted(server) -> None:
    body = json.dumps({"input": "x" * 30_000}).encode()  # the body does not count against the header cap
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-Pad: "
            + b"a" * 15_000
            + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body
        )
        closed, data = closed_within(sock, PATIENCE)
    assert closed and data.startswith(b"HTTP/1.1 200"), data[:200]


def test_a_stalled_body_gets_408_and_the_connection_closes(server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"input": '
        )
        closed, data = closed_within(sock, PATIENCE)
    assert closed, "the stalled body kept the connection open"
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data
    assert json.loads(body)["error"]["code"] == "http_408"


def test_a_body_trickled_inside_the_pause_limit_is_cut_at_the_deadline(server) -> None:
    """One byte every 0.2 s never pauses past the 0.5 s body timeout; the 1.5 s deadline still ends it."""
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )
        began = time.monotonic()
        try:
            while time.monotonic() - began < PATIENCE:
                sock.sendall(b" ")
                time.sleep(LIMIT * 0.4)
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed, data = closed_within(sock, PATIENCE)
        assert closed and time.monotonic() - began < PATIENCE, "the trickled body kept the connection open"
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data
    assert "server.body_deadline" in json.loads(body)["error"]["message"]


def test_ordinary_requests_on_one_connection_still_work(server) -> None:
    conn = http.client.HTTPConnection(*server, timeout=PATIENCE)
    try:
        for _ in range(3):
            conn.request("GET", "/health")
            assert conn.getresponse().read() == b'{"status":"ok"}'
            body = json.dumps({"input": ["a", "b"]})
            conn.request("POST", "/v1/embeddings", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200 and len(json.loads(response.read())["data"]) == 2
            time.sleep(LIMIT * 1.5)  # idle between requests, past the header deadline: still open
    finally:
        conn.close()


def get(address: tuple[str, int], path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(*address, timeout=PATIENCE)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_connections_beyond_max_connections_get_503_but_the_probes_answer() -> None:
    conf = settings(max_connections=2, header_timeout=PATIENCE)
    app = create_app(conf)
    with live_server(app, settings=conf) as (url, _):
        wait_ready(app)
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        idle = [connect(address) for _ in range(2)]
        try:
            time.sleep(0.2)  # let the server accept them
            full = get(address, "/v1/models")
            assert full.status == 503 and full.getheader("Retry-After") == "1"
            assert get(address, "/health").status == 200  # slow clients must not blind the probes
            assert get(address, "/ready").status == 200
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        assert get(address, "/v1/models").status == 200
