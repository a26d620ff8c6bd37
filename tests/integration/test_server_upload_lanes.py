"""Issue 22, item 3: uploads to one KB cannot make another wait behind their PDF parsing.

A real uvicorn on 127.0.0.1 with two parser processes and a short parse timeout: eight hostile PDF
uploads to KB ``a`` keep both parsers busy for seconds (each also restarts the parser it timed out).
A one-line Markdown upload to KB ``b`` is parsed without a parser process and answers while most of
them still wait; a PDF upload to ``b`` gets a parser before ``a``'s queue is through; a file that
waits past ``server.upload_wait_timeout`` gets 503 with ``Retry-After``.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest
from server_support import live_server, wait_ready

from finesift.server.app import create_app
from finesift.settings import Settings
from finesift.testing.hostile import shared_stream_pdf

pytest.importorskip("lancedb")

PARSE_TIMEOUT_S = 1.0  # each hostile PDF holds a parser this long, then is refused (413)
HOSTILE = shared_stream_pdf(pages=2, stream_bytes=8_000_000)  # pypdf needs seconds for it


def settings(tmp_path, *, workers: int, wait: float) -> Settings:
    return Settings(
        home=tmp_path / "home",
        embedding={"model": "fake"},
        reranker={"model": "fake"},
        kb={"parse_timeout_s": PARSE_TIMEOUT_S, "parse_workers": workers},
        server={"upload_wait_timeout": wait},
    )


def upload(url: str, kb: str, *files: tuple[str, bytes]) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=60) as client:
        return client.post(f"/v1/kbs/{kb}/documents", files=[("files", f) for f in files])


def pending(futures: list[Future]) -> int:
    return sum(not f.done() for f in futures)


FLOOD = 8  # a's queue: 4+ s on two parsers, longer than b's own 8 MB upload takes to reach the queue


def test_plain_text_and_other_kbs_do_not_wait_behind_one_kbs_pdfs(tmp_path) -> None:
    conf = settings(tmp_path, workers=2, wait=60)
    app = create_app(conf)
    with live_server(app, settings=conf) as (url, _), ThreadPoolExecutor(FLOOD + 2) as pool:
        wait_ready(app)
        for name in ("a", "b"):
            assert httpx.post(f"{url}/v1/kbs", json={"name": name}).status_code == 201
        flood = [pool.submit(upload, url, "a", (f"hostile{i}.pdf", HOSTILE)) for i in range(FLOOD)]
        time.sleep(0.5)  # let them reach the parsers' queue
        other_pdf = pool.submit(upload, url, "b", ("other.pdf", HOSTILE))
        note = upload(url, "b", ("note.md", b"# Backups\n\nThe nightly backup runs at two.\n"))
        assert note.status_code == 200, note.text
        assert note.json()["documents_added"] == 1
        # FLOOD files of over 1 s each on 2 parsers; the note did not wait for them.
        assert pending(flood) >= 3, "the Markdown upload waited behind the PDF parsing of another KB"
        # Refused by the parse timeout, as each of a's; served in turn with a's, not after all of them.
        assert other_pdf.result().status_code == 413
        assert pending(flood) >= 1, "KB b's PDF waited for KB a's whole queue"
        assert [f.result().status_code for f in flood] == [413] * FLOOD


def test_a_file_waiting_past_the_deadline_gets_503_with_retry_after(tmp_path) -> None:
    conf = settings(tmp_path, workers=1, wait=0.3)
    app = create_app(conf)
    with live_server(app, settings=conf) as (url, _):
        wait_ready(app)
        assert httpx.post(f"{url}/v1/kbs", json={"name": "a"}).status_code == 201
        started = time.monotonic()
        # One parser: the second file waits for the first (about 1 s), past the 0.3 s deadline.
        response = upload(url, "a", ("one.pdf", HOSTILE), ("two.pdf", HOSTILE))
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        error = response.json()["error"]
        assert error["code"] == "deadline_exceeded" and "server.upload_wait_timeout" in error["message"]
        assert time.monotonic() - started < 10 * PARSE_TIMEOUT_S
