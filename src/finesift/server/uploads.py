"""Multipart uploads: validated file names, size limits, parsing into documents (``upload://NAME``).

The whole body is already capped by ``server.max_upload_bytes`` (413, in the body-limit
middleware); here the number of files is capped, names are reduced to a safe base name, and each
file is parsed by the loader of its extension in a thread. A file that cannot be parsed is a
failure with a one-line reason; it does not fail the others.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import UploadFile

from finesift.errors import FinesiftError, InvalidRequest
from finesift.ingest.loaders import load_bytes
from finesift.settings import ServerSettings
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


async def read_uploads(request: Request, settings: ServerSettings) -> Uploads:
    """Parse the multipart body: field ``files``, at most ``max_upload_files`` files."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("send the files as multipart/form-data in the field 'files'")
    limit = settings.max_upload_files
    try:
        form = await request.form(max_files=limit, max_fields=16)
    except Exception as exc:  # starlette raises its own MultiPartException/HTTPException
        if getattr(exc, "status_code", None) == 413:
            raise
        raise InvalidRequest(f"the multipart body cannot be read: {exc}; at most {limit} files") from exc
    try:
        files = [f for f in form.getlist(FIELD) if isinstance(f, UploadFile)]
        if not files:
            raise InvalidRequest(f"no file in the request; send them in the multipart field {FIELD!r}")
        return await _parse(files)
    finally:
        await form.close()


async def _parse(files: list[UploadFile]) -> Uploads:
    out = Uploads()
    names = [safe_name(f.filename) for f in files]
    if len(set(names)) != len(names):
        raise InvalidRequest("two uploaded files have the same name; each name must be unique")
    for name, upload in zip(names, files, strict=True):
        data = await upload.read()
        source = UPLOAD_SCHEME + name
        try:
            out.documents.append(await asyncio.to_thread(load_bytes, data, source))
        except FinesiftError as exc:
            out.failures.append(Failure(source, " ".join(str(exc).split())))
    return out
