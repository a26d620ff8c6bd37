"""Small hostile documents whose parsing cost is out of all proportion to their size (issue 17).

Each builder returns the file's bytes; the defaults are the sizes of the security pass's report:
a 38 KB DOCX of 20,000 paragraphs with an empty style, HTML nested 20,000 levels deep, and a
14 KB PDF whose 50 pages all show one 2 MB content stream.
"""

from __future__ import annotations

import copy
import io
import zlib


def empty_style_docx(paragraphs: int = 20_000, *, text: str = "") -> bytes:
    """A DOCX of ``paragraphs`` paragraphs with an empty style id (``<w:pStyle w:val=""/>``)."""
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = docx.Document()
    run = f"<w:r><w:t>{text}</w:t></w:r>" if text else ""
    proto = parse_xml(f'<w:p {nsdecls("w")}><w:pPr><w:pStyle w:val=""/></w:pPr>{run}</w:p>')
    section = document.element.body[-1]  # paragraphs go before the final w:sectPr
    for _ in range(paragraphs):
        section.addprevious(copy.deepcopy(proto))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def nested_html(depth: int = 20_000, *, tag: str = "div") -> bytes:
    """``depth`` nested ``<tag>`` elements around one sentence."""
    return f"<html><body>{f'<{tag}>' * depth}deep text{f'</{tag}>' * depth}</body></html>".encode()


def shared_stream_pdf(pages: int = 50, stream_bytes: int = 2_000_000) -> bytes:
    """A PDF whose ``pages`` pages all draw one Flate-compressed content stream of ``stream_bytes``."""
    line = b"(Hostile page text) Tj 1 0 0 1 72 700 Tm\n"
    body = b"BT /F1 10 Tf 12 TL 72 720 Td\n" + line * (stream_bytes // len(line)) + b"ET\n"
    packed = zlib.compress(body, 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream",
        *[page] * pages,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
