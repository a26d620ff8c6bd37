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
PATIENCE = 8.0  # seconds a test waits for the server to close a stalled connection


def settings(**server) -> Settings:
    limits = {"header_timeout": LIMIT, "body_timeout": LIMIT, "keep_alive_timeout": 1}
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


def test_oversized_headers_are_refused(server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000)
        closed, data = closed_within(sock, PATIENCE)
    assert closed and b"200 OK" not in data


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


def test_connections_beyond_max_connections_get_503() -> None:
    conf = settings(max_connections=2, header_timeout=PATIENCE)
    app = create_app(conf)
    with live_server(app, settings=conf) as (url, _):
        wait_ready(app)
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        idle = [connect(address) for _ in range(2)]
        try:
            time.sleep(0.2)  # let the server accept them
            conn = http.client.HTTPConnection(*address, timeout=PATIENCE)
            conn.request("GET", "/health")
            assert conn.getresponse().status == 503
            conn.close()
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        conn = http.client.HTTPConnection(*address, timeout=PATIENCE)
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        conn.close()
