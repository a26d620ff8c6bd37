"""Loaders: one small function per format, ``(data, source, caps) -> Document``, chosen by extension.

Every loader treats its input as untrusted: parser errors become :class:`InvalidRequest` naming the
file, zip-based formats are checked for bombs before parsing, and the text is normalised
(:func:`normalize_text`) so offsets are stable. Headings become Markdown ``#`` lines, which the
chunker treats as section boundaries.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import zipfile
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from finesift.errors import FinesiftError, InvalidRequest, MissingDependency
from finesift.ingest.docx_text import docx_text
from finesift.ingest.html_text import html_text
from finesift.ingest.limits import NO_CAPS, Caps
from finesift.ingest.normalize import normalize_text
from finesift.types import Document

Loader = Callable[[bytes, str, Caps], Document]

TEXT_TYPES = frozenset({"txt", "text", "md", "markdown", "rst", "log", "csv", "tsv", "adoc", "org"})
HTML_TYPES = frozenset({"html", "htm", "xhtml"})
CODE_TYPES = frozenset({
    "py", "pyi", "js", "mjs", "cjs", "ts", "tsx", "jsx", "java", "kt", "kts", "scala", "go", "rs", "c", "h",
    "cc", "cpp", "cxx", "hpp", "hh", "cs", "rb", "php", "swift", "m", "mm", "sh", "bash", "zsh", "ps1",
    "sql", "r", "lua", "pl", "dart", "vue", "svelte", "css", "scss", "less", "yaml", "yml", "toml", "ini",
    "cfg", "json", "xml", "proto", "graphql", "tf", "cmake", "gradle", "ex", "exs", "erl", "hs", "ml",
    "clj", "jl", "zig", "nim", "sol",
})  # fmt: skip
#: Zip-based formats (DOCX): caps against decompression bombs.
MAX_ZIP_ENTRIES = 5_000
MAX_ZIP_BYTES = 256 * 1024 * 1024
MAX_ZIP_RATIO = 200
SHORT_TEXT_BYTES = 256
log = logging.getLogger(__name__)
_CJK_TEXT = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")


def file_type_of(path: str | Path) -> str:
    """The lower-case extension without its dot (``""`` when there is none)."""
    return Path(path).suffix.lower().lstrip(".")


def decode_text(data: bytes, source: str) -> str:
    """Bytes to text: BOMs honoured, UTF-8 first, otherwise the detected encoding (e.g. GBK)."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    if b"\x00" in data[:8192]:
        raise InvalidRequest(f"{source}: looks like a binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    short_gbk = _short_gbk(data) if len(data) < SHORT_TEXT_BYTES else None
    if short_gbk is not None and (best is None or "gb" not in best.encoding):
        return short_gbk  # detectors guess poorly on a few bytes; GBK is the usual legacy encoding here
    if best is None:
        raise InvalidRequest(f"{source}: unknown text encoding; convert the file to UTF-8")
    return str(best)


def _short_gbk(data: bytes) -> str | None:
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    wide = [c for c in text if ord(c) > 127]
    return text if wide and all(_CJK_TEXT.match(c) for c in wide) else None


def load_text(data: bytes, source: str, caps: Caps = NO_CAPS) -> Document:
    """Plain text, Markdown and other prose formats."""
    return Document(source, normalize_text(decode_text(data, source)), file_type_of(source))


def load_code(data: bytes, source: str, caps: Caps = NO_CAPS) -> Document:
    """Source code: decoded like text; the chunker cuts it at blank lines and definitions."""
    return Document(source, normalize_text(decode_text(data, source)), file_type_of(source))


def load_html(data: bytes, source: str, caps: Caps = NO_CAPS) -> Document:
    """HTML: visible text only; h1-h6 become ``#`` headings, block elements paragraphs (linear in size)."""
    text, title = html_text(decode_text(data, source), source, caps)
    return Document(source, normalize_text(text), file_type_of(source), title=title)


def _pdf_page_key(page: Any) -> tuple[Any, ...] | None:
    """What a page's text depends on, when its content streams are shared objects (else ``None``).

    Pages that draw the same content streams with the same resources and parent have the same text:
    a 14 KB PDF whose 50 pages share one 2 MB stream is then extracted once, not 50 times.
    """
    from pypdf.generic import IndirectObject

    contents = page.get("/Contents")  # dict.get: the reference itself, not the resolved stream
    refs = list(contents) if isinstance(contents, list) else [contents]
    if not refs or not all(isinstance(r, IndirectObject) for r in refs):
        return None
    ids = tuple((r.idnum, r.generation) for r in refs)
    return ids, repr(page.get("/Resources")), repr(page.get("/Parent")), page.get("/Rotate")


def _pdf_page_text(page: Any, source: str, caps: Caps, offset: int) -> str:
    """One page's text; over ``caps.chars`` (counting ``offset`` before it) is refused as text arrives."""
    seen = [offset]

    def count(text: str, *_: Any) -> None:
        seen[0] += len(text)
        caps.check_chars(source, seen[0])

    return normalize_text(page.extract_text(visitor_text=count) or "")


class _PypdfRelay(logging.Handler):
    """pypdf's complaints about a malformed file, logged at INFO under finesift's name with the file's.

    Left to themselves they reach stderr through logging's last-resort handler (in parser workers,
    which configure no logging) or the command's WARNING handler, beside the command's own report.
    """

    def emit(self, record: logging.LogRecord) -> None:
        log.info("%s: pypdf: %s", _pdf_source.get(), record.getMessage())


_pdf_source: ContextVar[str] = ContextVar("pdf_source", default="a PDF")
_relay_lock = threading.Lock()


def _relay_pypdf_log() -> None:
    """Route the ``pypdf`` logger through :class:`_PypdfRelay` only (once per process)."""
    logger = logging.getLogger("pypdf")
    with _relay_lock:
        if not any(isinstance(h, _PypdfRelay) for h in logger.handlers):
            logger.addHandler(_PypdfRelay())
            logger.propagate = False


def load_pdf(data: bytes, source: str, caps: Caps = NO_CAPS) -> Document:
    """PDF text layer, page by page; ``page_starts[i]`` is where page i+1 begins in the text.

    The page count is checked before any text is extracted, and extraction stops once the text is
    over ``caps.chars`` (within a page too, as far as pypdf reports text as it goes). pypdf's
    warnings are logged at INFO (shown with ``-v``).
    """
    _relay_pypdf_log()
    token = _pdf_source.set(source)
    try:
        return _load_pdf(data, source, caps)
    finally:
        _pdf_source.reset(token)


def _load_pdf(data: bytes, source: str, caps: Caps) -> Document:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise InvalidRequest(f"{source}: the PDF is encrypted; decrypt it first")
    caps.check_pages(source, len(reader.pages))
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    done: dict[tuple[Any, ...], str] = {}
    for page in reader.pages:
        key = _pdf_page_key(page)
        text = done.get(key) if key is not None else None
        if text is None:
            text = _pdf_page_text(page, source, caps, offset)
            if key is not None:
                done[key] = text
        starts.append(offset)
        parts.append(text)
        offset += len(text) + 2
        caps.check_chars(source, offset - 2)
    text = "\n\n".join(parts)
    if not text.strip():
        raise InvalidRequest(f"{source}: the PDF has no text layer (scanned?); OCR it first")
    return Document(source, text, "pdf", page_starts=tuple(starts))


def check_zip(data: bytes, source: str) -> None:
    """Refuse archives with too many entries, too much uncompressed data, or a bomb-like ratio."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile as exc:
        raise InvalidRequest(f"{source}: not a valid zip-based document ({exc})") from exc
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if len(infos) > MAX_ZIP_ENTRIES or total > MAX_ZIP_BYTES or total / packed > MAX_ZIP_RATIO:
        raise InvalidRequest(f"{source}: the archive expands too much ({len(infos)} entries, {total} bytes)")


def load_docx(data: bytes, source: str, caps: Caps = NO_CAPS) -> Document:
    """DOCX body in order: headings as ``#`` lines, lists as ``-`` items, tables as ``a | b`` rows."""
    check_zip(data, source)
    return Document(source, normalize_text(docx_text(data, source, caps)), "docx")


def loader_for(file_type: str) -> Loader | None:
    """The loader for an extension, or ``None`` when the format is not supported."""
    if file_type in TEXT_TYPES:
        return load_text
    if file_type in CODE_TYPES:
        return load_code
    return {"pdf": load_pdf, "docx": load_docx, **dict.fromkeys(HTML_TYPES, load_html)}.get(file_type)


def load_bytes(data: bytes, source: str, caps: Caps = NO_CAPS) -> Document:
    """Parse ``data`` by the extension of ``source``; every parser failure is a one-line InvalidRequest.

    A document over ``caps`` (characters, PDF pages) is refused with :class:`~finesift.errors.TooLarge`.
    """
    kind = file_type_of(source)
    loader = loader_for(kind)
    if loader is None:
        raise InvalidRequest(f"{source}: unsupported file type {('.' + kind) if kind else '(no extension)'}")
    try:
        document = loader(data, source, caps)
    except FinesiftError:
        raise
    except ImportError as exc:
        raise MissingDependency(getattr(exc, "name", None) or "parser", "kb", f"needed for .{kind}") from exc
    except RecursionError as exc:
        raise InvalidRequest(f"{source}: cannot parse .{kind}: nested too deeply") from exc
    except Exception as exc:  # third-party parsers on untrusted input raise anything
        raise InvalidRequest(f"{source}: cannot parse .{kind}: {type(exc).__name__}: {exc}") from exc
    caps.check_chars(source, len(document.text))
    if not document.text.strip():
        raise InvalidRequest(f"{source}: no text to index")
    return document
