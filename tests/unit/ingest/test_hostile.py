"""Hostile documents (issue 17, item 1): small files whose parsing cost was unbounded are refused or
parsed within a bounded time, and each refusal names its cap and the setting that raises it.

The security pass measured these files on the old loaders: the DOCX took 27 s, the 20k-deep HTML
11.6 s (100k: over 120 s), the PDF 103 s for 31.9 M characters. A test waits for the parse in a
thread at most ``BOUND_S`` (generous: the machine may be loaded), so on the old loaders it fails
at the bound instead of running for minutes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from finesift.errors import InvalidRequest, TooLarge
from finesift.ingest.limits import Caps
from finesift.ingest.loaders import load_bytes
from finesift.ingest.workers import ParsePool, Parser, parser_for
from finesift.settings import KBSettings
from finesift.testing.hostile import empty_style_docx, nested_html, shared_stream_pdf

BOUND_S = 20.0


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result or exception, failing the test if it has not finished after ``seconds``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"parsing ran past {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture(scope="module")
def pool():
    pool = ParsePool(workers=1, memory_mb=1024)
    yield pool
    pool.close()


def test_docx_of_20k_empty_style_paragraphs_is_quick() -> None:
    data = empty_style_docx(20_000)
    assert len(data) < 48_000  # the report's file: 38 KB
    with pytest.raises(InvalidRequest, match="no text to index"):
        within(BOUND_S, lambda: load_bytes(data, "empty.docx"))


def test_docx_paragraphs_keep_their_text_and_default_style() -> None:
    document = within(BOUND_S, lambda: load_bytes(empty_style_docx(5_000, text="word"), "words.docx"))
    assert document.text.split("\n\n") == ["word"] * 5_000


def test_docx_text_stops_at_the_char_cap() -> None:
    data = empty_style_docx(5_000, text="0123456789")
    with pytest.raises(TooLarge, match=r"more than 1,000 characters .*kb\.max_chars.*FINESIFT_KB__MAX_CHARS"):
        load_bytes(data, "long.docx", Caps(chars=1_000))


def test_html_nested_20k_deep_is_linear() -> None:
    document = within(BOUND_S, lambda: load_bytes(nested_html(20_000), "deep.html"))
    assert document.text == "deep text"


@pytest.mark.slow
def test_html_nested_100k_deep_is_linear() -> None:
    document = within(BOUND_S, lambda: load_bytes(nested_html(100_000, tag="span"), "deeper.html"))
    assert document.text == "deep text"


def test_html_text_stops_at_the_char_cap() -> None:
    data = b"<p>" + b"word " * 10_000 + b"</p>"
    with pytest.raises(TooLarge, match=r"kb\.max_chars"):
        load_bytes(data, "long.html", Caps(chars=1_000))


def test_html_structure_is_kept() -> None:
    html = (
        b"<html><head><title>Guide &amp; more</title></head><body><h1>Top <b>level</b></h1>"
        b"<table><tr><td>flag<td>meaning</tr><tr><td>--fast</td><td>skip</td></tr></table>"
        b"<p>line<br>break</p><svg><text>invisible</text></svg><p>after</p></body></html>"
    )
    document = load_bytes(html, "guide.html")
    assert document.title == "Guide & more"
    assert document.text.startswith("# Top level")
    assert "flag | meaning" in document.text and "--fast | skip" in document.text
    assert "line\nbreak" in document.text and "after" in document.text
    assert "invisible" not in document.text and "Guide" not in document.text


def test_pdf_pages_are_capped_before_extraction() -> None:
    with pytest.raises(TooLarge, match=r"50 pages, more than 10 .*kb\.max_pages"):
        within(BOUND_S, lambda: load_bytes(shared_stream_pdf(), "shared.pdf", Caps(pages=10)))


def test_pdf_extraction_stops_at_the_char_cap() -> None:
    data = shared_stream_pdf(stream_bytes=100_000)  # about 44,000 characters per page
    with pytest.raises(TooLarge, match=r"more than 100,000 characters .*kb\.max_chars"):
        within(BOUND_S, lambda: load_bytes(data, "shared.pdf", Caps(chars=100_000)))


def test_the_reported_pdf_is_refused_by_the_parse_timeout(pool: ParsePool) -> None:
    data = shared_stream_pdf()  # the report's file: 14 KB, 50 pages of one 2 MB stream
    assert len(data) < 16_000
    parser = Parser(Caps(), 1.0, pool)
    with pytest.raises(
        TooLarge, match=r"longer than 1 s .*kb\.parse_timeout_s.*FINESIFT_KB__PARSE_TIMEOUT_S"
    ):
        within(BOUND_S, lambda: parser(data, "upload://shared.pdf"))
    assert parser(b"<p>still working</p>", "next.html").text == "still working"  # a fresh worker


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux")
def test_a_parse_over_the_memory_limit_is_refused() -> None:
    big = b"<p>" + b"word " * ((40 << 20) // 5) + b"</p>"
    small = ParsePool(workers=1, memory_mb=64)
    try:
        with pytest.raises(TooLarge, match=r"more than 64 MiB .*kb\.parse_memory_mb"):
            within(60, lambda: small.parse(big, "big.html", Caps(), timeout_s=60))
        assert small.parse(b"<p>small</p>", "small.html", Caps(), timeout_s=60).text == "small"
    finally:
        small.close()


def test_worker_errors_keep_their_class_and_message(pool: ParsePool) -> None:
    parser = Parser(Caps(), 30.0, pool)
    with pytest.raises(InvalidRequest, match=r"cannot parse \.pdf") as info:
        parser(b"not a pdf", "broken.pdf")
    assert type(info.value) is InvalidRequest


def test_parser_for_settings() -> None:
    kb = KBSettings(max_chars=10, parse_workers=0)
    parser = parser_for(kb)
    assert parser.pool is None and parser.caps.chars == 10
    with pytest.raises(TooLarge, match=r"kb\.max_chars"):
        parser(b"<p>more than ten characters</p>", "a.html")
    assert parser_for(KBSettings(parse_workers=1)).pool is not None


def test_token_and_chunk_caps_at_and_past_the_limit() -> None:
    from finesift.ingest.chunking import chunk_document
    from finesift.types import Document

    document = Document("a.md", "\n\n".join(f"# Part {i}\n\nfour words of text" for i in range(5)), "md")

    def words(texts):
        return [len(t.split()) for t in texts]

    def chunks(caps: Caps) -> int:
        return len(chunk_document(document, "id", count=words, size=16, overlap=0, caps=caps))

    assert chunks(Caps(tokens=35, chunks=5)) == 5  # 5 x (3 + 4) tokens, one chunk per part
    with pytest.raises(TooLarge, match=r"35 tokens, more than 34 .*kb\.max_tokens"):
        chunks(Caps(tokens=34))
    with pytest.raises(TooLarge, match=r"5 chunks, more than 4 .*kb\.max_chunks"):
        chunks(Caps(chunks=4))


def test_char_cap_at_and_past_the_limit() -> None:
    assert load_bytes(b"x" * 100, "a.txt", Caps(chars=100)).text == "x" * 100
    with pytest.raises(TooLarge, match=r"more than 100 characters"):
        load_bytes(b"x" * 101, "a.txt", Caps(chars=100))


def test_pages_sharing_one_content_stream_are_extracted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PageObject

    calls = []
    extract = PageObject.extract_text

    def counted(self: Any, *args: Any, **kwargs: Any) -> str:
        calls.append(1)
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", counted)
    document = load_bytes(shared_stream_pdf(pages=50, stream_bytes=20_000), "shared.pdf")
    ends = [*document.page_starts[1:], None]
    pages = [document.text[a:b].strip() for a, b in zip(document.page_starts, ends, strict=True)]
    assert len(pages) == 50 and len(set(pages)) == 1 and pages[0].startswith("Hostile page text")
    assert len(calls) == 1
    two = load_bytes(make_two_page_pdf(), "two.pdf")  # distinct streams: each page its own text
    assert two.text[two.page_starts[1] :].startswith("Second")


def make_two_page_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in ("First page.", "Second page."):
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())
