"""Visible text of an HTML page in one linear pass, whatever its nesting depth.

A tree builder (BeautifulSoup) pays per element for the depth of the tree, so 100,000 nested ``<div>``
took minutes; this reads the tag events of the standard library's tokenizer and keeps no tree, only
counters, so nesting is flattened: its cost is the length of the page. h1-h6 become ``#`` headings,
block elements paragraphs, list items ``-`` lines, table cells ``a | b``; scripts, styles and the
other invisible elements are dropped.
"""

from __future__ import annotations

from html.parser import HTMLParser

from finesift.ingest.limits import Caps

DROP = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object"})
BLOCKS = frozenset({
    "p", "div", "section", "article", "li", "tr", "pre", "blockquote", "table", "ul", "ol", "dl", "dt",
    "dd", "header", "footer", "main", "nav", "aside", "figure", "figcaption",
})  # fmt: skip
HEADINGS = {f"h{level}": level for level in range(1, 7)}
CELLS = frozenset({"td", "th"})


class _TextExtractor(HTMLParser):
    """Tag events to text; ``skip`` counts the dropped elements we are inside of."""

    def __init__(self, source: str, caps: Caps) -> None:
        super().__init__(convert_charrefs=True)
        self.source, self.caps = source, caps
        self.parts: list[str] = []
        self.size = 0
        self.skip = 0
        self.heading: list[str] | None = None
        self.level = 0
        self.title_parts: list[str] | None = None
        self.title: str | None = None
        self.in_cell = False

    def emit(self, text: str) -> None:
        if self.heading is not None:
            self.heading.append(text)
        else:
            self.parts.append(text)

    def handle_data(self, data: str) -> None:
        if self.title_parts is not None:
            self.title_parts.append(data)
        if not self.skip:
            self.emit(data)
            # Only text counts: the separators of 100,000 nested blocks normalise away.
            self.size += len(data)
            self.caps.check_chars(self.source, self.size)

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "title" and self.title is None:
            self.title_parts = []
        if tag == "body" and self.skip:
            self.skip = 0  # a <head> left open ends where the body starts
        if tag in DROP:
            self.skip += 1
        if not self.skip:
            self._open(tag)

    def _open(self, tag: str) -> None:
        if tag in HEADINGS:
            self.heading, self.level = [], HEADINGS[tag]
        elif tag == "br":
            self.emit("\n")
        elif tag in CELLS:
            if self.in_cell:
                self.emit(" | ")
            self.in_cell = True
        elif tag == "tr":
            self.in_cell = False
        if tag in BLOCKS:
            self.emit("\n- " if tag == "li" else "\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.title_parts is not None:
            self.title = " ".join(" ".join(self.title_parts).split())
            self.title_parts = None
        if tag in DROP:
            self.skip = max(self.skip - 1, 0)
            return
        if self.skip:
            return
        if tag in HEADINGS and self.heading is not None:
            words = " ".join(p.strip() for p in self.heading if p.strip())
            self.heading = None
            self.emit(f"\n\n{'#' * self.level} {words}\n\n")
        elif tag in CELLS and self.in_cell:
            self.emit(" | ")
            self.in_cell = False
        if tag in BLOCKS:
            self.emit("\n")


def html_text(text: str, source: str, caps: Caps) -> tuple[str, str | None]:
    """``(visible text, title)`` of an HTML page; over ``caps.chars`` characters is refused early."""
    parser = _TextExtractor(source, caps)
    parser.feed(text)
    parser.close()
    if parser.heading is not None:  # a heading left open at the end of the page
        parser.parts.append(" ".join(p.strip() for p in parser.heading if p.strip()))
    return "".join(parser.parts), parser.title
