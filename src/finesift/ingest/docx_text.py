"""DOCX body text read straight from the XML: one pass, style names looked up in a dict.

python-docx resolves a paragraph's style by scanning every style of the document (``par.style``), so
20,000 empty paragraphs took minutes; here the style table is read once and each paragraph costs
its own size. python-docx still opens the package (with its entity-free XML parser).
"""

from __future__ import annotations

import io
from typing import Any

from finesift.ingest.limits import Caps

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_RUN_TEXT = {f"{W}t": None, f"{W}tab": "\t", f"{W}ptab": "\t", f"{W}br": "\n", f"{W}cr": "\n",
             f"{W}noBreakHyphen": "-"}  # fmt: skip


def style_names(styles: Any) -> tuple[dict[str, str], str]:
    """``({style id: lower-case name}, name of the default paragraph style)`` of a styles element."""
    names: dict[str, str] = {}
    default = ""
    for style in styles.iterchildren(f"{W}style"):
        name_el = style.find(f"{W}name")
        name = (name_el.get(f"{W}val") or "") if name_el is not None else ""
        names[style.get(f"{W}styleId") or ""] = name.lower()
        if style.get(f"{W}type") == "paragraph" and style.get(f"{W}default") in ("1", "true", "on"):
            default = name.lower()
    return names, default


def paragraph_text(par: Any) -> str:
    """The text of a ``w:p``: its runs' text, tabs and breaks (deleted text and field codes left out)."""
    pieces = []
    for el in par.iter(*_RUN_TEXT):
        fixed = _RUN_TEXT[el.tag]
        pieces.append(el.text or "" if fixed is None else fixed)
    return "".join(pieces)


def _markup(text: str, style: str) -> str:
    if style == "title":
        return f"# {text}"
    if style.startswith("heading") and style[7:].strip().isdigit():
        return f"{'#' * min(int(style[7:]), 6)} {text}"
    return f"- {text}" if style.startswith("list") else text


def _table(table: Any) -> str:
    rows = []
    for row in table.iterchildren(f"{W}tr"):
        cells: list[str] = []
        for cell in row.iterchildren(f"{W}tc"):
            text = " ".join(" ".join(paragraph_text(p) for p in cell.iter(f"{W}p")).split())
            if not cells or cells[-1] != text:  # merged cells repeat their text
                cells.append(text)
        rows.append(" | ".join(cells))
    return "\n".join(rows)


def docx_text(data: bytes, source: str, caps: Caps) -> str:
    """The body in order: headings as ``#`` lines, lists as ``-`` items, tables as ``a | b`` rows."""
    import docx

    document = docx.Document(io.BytesIO(data))
    names, default = style_names(document.styles.element)
    blocks: list[str] = []
    size = 0
    style_key = f"{W}val"
    for child in document.element.body.iterchildren(f"{W}p", f"{W}tbl"):
        if child.tag == f"{W}tbl":
            block = _table(child)
        else:
            text = paragraph_text(child).strip()
            if not text:
                continue
            ref = child.find(f"{W}pPr/{W}pStyle")
            style = names.get(ref.get(style_key) or "", default) if ref is not None else default
            block = _markup(text, style)
        size += len(block) + 2
        caps.check_chars(source, size)
        blocks.append(block)
    return "\n\n".join(b for b in blocks if b)
