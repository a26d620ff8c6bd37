"""Multipart uploads: validated file names, size limits, parsing into documents (``upload://NAME``).

The whole body is already capped by ``server.max_upload_bytes`` (413, in the body-limit
middleware); here the number of files is capped, names are reduced to a safe base name, and the
files are parsed by the KB settings' parser: PDF, DOCX and HTML in worker processes under
``kb.parse_timeout_s`` and ``kb.parse_memory_mb``, every file under the per-document caps
(``kb.max_chars``, ``kb.max_pages``), and all of them together under ``server.max_upload_chars``
(413). A file that cannot be parsed is a failure with a one-line reason; it does not fail the
others. When no file could be parsed and the first was refused by a cap, the answer is that 413.

Plain text, Markdown and code are parsed in a thread at once; they never wait for a parser process.
PDF, DOCX and HTML files wait for one in their KB's turn (:class:`~finesift.server.parse_slots.FairSlots`),
each request at most ``server.upload_wait_timeout`` seconds (503 with ``Retry-After`` beyond).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import UploadFile

from finesift.errors import DeadlineExceeded, FinesiftError, InvalidRequest, TooLarge
from finesift.ingest.limits import refusal
from finesift.ingest.workers import Parser, parser_for
from finesift.server.parse_slots import FairSlots
from finesift.settings import Settings
from finesift.types import Document, Failure

UPLOAD_SCHEME = "upload://"
FIELD = "files"
MAX_NAME_CHARS = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Uploads:
    documents: list[Document] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def safe_name(raw: str | None) -> str:
    """The base name of an uploaded file (no folders, no control characters); 422 if nothing is left."""
    if raw is None or "\x00" in raw:
        raise InvalidRequest("every uploaded file needs a file name without NUL characters")
    name = _CONTROL.sub("", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if not name or name in (".", "..") or len(name) > MAX_NAME_CHARS:
        raise InvalidRequest(
            f"invalid upload file name {raw[:80]!r}; send a plain file name such as notes.md"
        )
    return name


@dataclass(frozen=True)
class Lane:
    """Where one request's files are parsed: for KB ``kb``, waiting for a parser until ``ends``
    (the event loop's clock)."""

    parser: Parser
    slots: FairSlots
    kb: str
    ends: float

    async def parse(self, data: bytes, source: str) -> Document:
        """``parser(data, source)``: text and code in a thread now, the rest in the pool in turn."""
        pool = self.parser.pool
        if pool is None or not self.parser.in_worker(source):
            return await asyncio.to_thread(self.parser, data, source)
        loop = asyncio.get_running_loop()
        wait = self.ends - loop.time()
        if not await self.slots.acquire(self.kb, timeout=max(wait, 0.0)):
            raise DeadlineExceeded(
                f"{source}: every parser process stayed busy past the upload's deadline "
                f"(server.upload_wait_timeout); retry later"
            )
        job = loop.run_in_executor(pool.executor, self.parser, data, source)
        job.add_done_callback(lambda _: self.slots.release())
        # A client that goes away does not free the slot before its parser does.
        return await asyncio.shield(job)


async def read_uploads(request: Request, settings: Settings, *, kb: str, slots: FairSlots) -> Uploads:
    """Parse the multipart body: field ``files``, at most ``server.max_upload_files`` files."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("send the files as multipart/form-data in the field 'files'")
    limit = settings.server.max_upload_files
    try:
        form = await request.form(max_files=limit, max_fields=16)
    except Exception as exc:  # starlette raises its own MultiPartException/HTTPException
        if getattr(exc, "status_code", None) in (408, 413):  # body too slow or too large: as it is
            raise
        raise InvalidRequest(f"the multipart body cannot be read: {exc}; at most {limit} files") from exc
    try:
        files = [f for f in form.getlist(FIELD) if isinstance(f, UploadFile)]
        if not files:
            raise InvalidRequest(f"no file in the request; send them in the multipart field {FIELD!r}")
        ends = asyncio.get_running_loop().time() + settings.server.upload_wait_timeout
        uploads = await _parse(files, Lane(parser_for(settings.kb), slots, kb, ends))
    finally:
        await form.close()
    _check_total(uploads, settings.server.max_upload_chars)
    return uploads


def _check_total(uploads: Uploads, limit: int) -> None:
    """Refuse an upload whose files hold more than ``limit`` characters of text together."""
    total = sum(len(d.text) for d in uploads.documents)
    if total > limit:
        what = f"the files hold {total:,} characters of text together, more than {limit:,}"
        raise refusal("upload", what, "server.max_upload_chars")


async def _parse(files: list[UploadFile], lane: Lane) -> Uploads:
    """Parse the files concurrently in ``lane``; 503 if one waited past the deadline."""
    names = [safe_name(f.filename) for f in files]
    if len(set(names)) != len(names):
        raise InvalidRequest("two uploaded files have the same name; each name must be unique")

    async def parse(name: str, upload: UploadFile) -> Document | FinesiftError:
        data = await upload.read()
        try:
            return await lane.parse(data, UPLOAD_SCHEME + name)
        except FinesiftError as exc:
            return exc

    out = Uploads()
    results = await asyncio.gather(*(parse(n, f) for n, f in zip(names, files, strict=True)))
    late = next((r for r in results if isinstance(r, DeadlineExceeded)), None)
    if late is not None:
        raise late
    for name, result in zip(names, results, strict=True):
        if isinstance(result, FinesiftError):
            out.failures.append(Failure(UPLOAD_SCHEME + name, " ".join(str(result).split())))
        else:
            out.documents.append(result)
    first = results[0]
    if not out.documents and isinstance(first, TooLarge):
        raise TooLarge(f"nothing to index: {first}") from first
    return out
