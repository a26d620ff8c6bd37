"""Hostile uploads over HTTP (issue 17, item 1): refused with 413 naming the cap, never minutes of CPU.

The caps are set low so each refusal comes fast; the default caps and limits are measured by
``benchmarks/hostile_parse.py``.
"""

from __future__ import annotations

import time

import pytest
from server_support import post_json, ready_client

from finesift.server.app import create_app
from finesift.settings import Settings
from finesift.testing.hostile import empty_style_docx, nested_html, shared_stream_pdf

pytest.importorskip("lancedb")

BOUND_S = 30.0


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(
        home=tmp_path_factory.mktemp("home"),
        embedding={"model": "fake"},
        reranker={"model": "fake"},
        kb={
            "max_chars": 50_000,
            "max_pages": 20,
            "max_chunks": 40,
            "parse_timeout_s": 2.0,
            "parse_workers": 1,
        },
        server={"max_upload_chars": 60_000},
    )
    with ready_client(create_app(settings)) as c:
        assert post_json(c, "/v1/kbs", {"name": "h"}).status_code == 201
        yield c


def upload(client, *files):
    started = time.perf_counter()
    response = client.post("/v1/kbs/h/documents", files=[("files", f) for f in files])
    assert time.perf_counter() - started < BOUND_S
    return response


def refused(response, setting: str) -> str:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_large" and setting in error["message"]
    assert "FINESIFT_" + setting.upper().replace(".", "__") in error["message"]
    return str(error["message"])


def test_shared_stream_pdf_is_413_by_page_cap(client):
    message = refused(upload(client, ("shared.pdf", shared_stream_pdf())), "kb.max_pages")
    assert message.startswith("nothing to index: upload://shared.pdf: 50 pages")


def test_shared_stream_pdf_is_413_by_parse_timeout(client):
    # one page of an 8 MB content stream: pypdf needs seconds before the first character
    refused(
        upload(client, ("shared.pdf", shared_stream_pdf(pages=2, stream_bytes=8_000_000))),
        "kb.parse_timeout_s",
    )


def test_too_much_text_is_413_by_char_cap(client):
    refused(upload(client, ("long.html", b"<p>" + b"word " * 20_000 + b"</p>")), "kb.max_chars")


def test_too_many_chunks_is_413_naming_the_cap(client):
    """Found while indexing, not parsing: still the upload caps' 413 when nothing else was stored."""
    text = "\n\n".join(f"# Section {i}\n\nShort paragraph number {i}." for i in range(100))
    refused(upload(client, ("many.md", text.encode())), "kb.max_chunks")


def test_too_many_chunks_beside_a_good_file_is_a_listed_failure(client):
    text = "\n\n".join(f"# Section {i}\n\nShort paragraph number {i}." for i in range(100))
    response = upload(client, ("many2.md", text.encode()), ("ok.md", b"A short note."))
    report = response.json()
    assert response.status_code == 200 and report["documents_failed"] == 1
    assert "kb.max_chunks" in report["failures"][0]["reason"] and report["failures"][0]["too_large"]


def test_upload_total_is_capped(client):
    files = [(f"part{i}.md", b"word " * 8_000) for i in range(2)]  # 40,000 characters each
    refused(upload(client, *files), "server.max_upload_chars")


def test_deep_html_and_empty_docx_answer_fast(client):
    report = upload(client, ("deep.html", nested_html(20_000)), ("empty.docx", empty_style_docx()))
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["documents_added"] == 1 and body["failures"][0]["source"] == "upload://empty.docx"


def test_a_hostile_file_fails_alone(client):
    response = upload(client, ("good.md", b"a good document about backups"), ("bad.pdf", shared_stream_pdf()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["documents_added"] == 1
    assert [f["source"] for f in body["failures"]] == ["upload://bad.pdf"]
    assert "kb.max_pages" in body["failures"][0]["reason"]
