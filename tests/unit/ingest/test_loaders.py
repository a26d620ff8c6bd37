"""Loaders: each format's text, headings, pages and failure messages."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from finesift.errors import InvalidRequest
from finesift.ingest.loaders import decode_text, load_bytes


def make_pdf(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Installation Guide", level=1)
    document.add_paragraph("Run the installer and restart.")
    document.add_heading("Options", level=2)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "flag", "meaning"
    table.cell(1, 0).text, table.cell(1, 1).text = "--fast", "skip checks"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_gbk_text_is_decoded() -> None:
    text = "数据库性能优化：索引的设计原则。"
    assert decode_text(text.encode("gbk"), "a.txt") == text
    assert load_bytes(("如何优化数据库\r\n第二行").encode("gbk"), "a.txt").text == "如何优化数据库\n第二行"


def test_utf8_bom_and_nul_free_text() -> None:
    doc = load_bytes("hello\x00 world\n\n\n\nbye".encode("utf-8-sig"), "x.md")
    assert doc.text == "hello world\n\nbye"
    assert doc.file_type == "md"


def test_html_keeps_visible_text_and_headings() -> None:
    html = (
        b"<html><head><title>T</title><style>p{}</style></head><body><h2>Setup</h2><p>Install it.</p>"
        b"<script>alert(1)</script><ul><li>one</li><li>two</li></ul></body></html>"
    )
    doc = load_bytes(html, "page.html")
    assert "## Setup" in doc.text and "Install it." in doc.text and "- one" in doc.text
    assert "alert" not in doc.text and "p{}" not in doc.text
    assert doc.title == "T"


def test_pdf_pages_and_offsets() -> None:
    doc = load_bytes(make_pdf(["First page text.", "Second page about indexes."]), "doc.pdf")
    assert doc.file_type == "pdf"
    assert len(doc.page_starts) == 2
    second = doc.text[doc.page_starts[1] :]
    assert second.startswith("Second page")


def test_docx_headings_and_tables() -> None:
    doc = load_bytes(make_docx(), "guide.docx")
    assert doc.text.startswith("# Installation Guide")
    assert "## Options" in doc.text
    assert "--fast | skip checks" in doc.text


def test_code_by_extension() -> None:
    doc = load_bytes(b"def getUserName(user):\n    return user.name\n", "m.py")
    assert doc.file_type == "py" and "getUserName" in doc.text


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"\x89PNG\r\n", "x.png", "unsupported file type .png"),
        (b"not a pdf", "broken.pdf", "cannot parse .pdf"),
        (b"PK\x03\x04 nope", "broken.docx", "not a valid zip"),
        (b"\x00\x01\x02", "bin.txt", "binary"),
        (b"   \n  ", "empty.txt", "no text"),
    ],
)
def test_bad_files_fail_with_one_line(data: bytes, name: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        load_bytes(data, name)
    assert "\n" not in str(info.value)


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\x00" * (20 << 20))
    with pytest.raises(InvalidRequest, match="expands too much"):
        load_bytes(out.getvalue(), "bomb.docx")
