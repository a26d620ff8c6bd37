"""Incremental indexing: find files, skip unchanged ones by content hash, load, chunk, embed, commit.

Documents are committed in groups of about ``commit_chunks`` chunks; each commit is atomic, so a
crash loses at most the group in flight, and a re-run picks up where it stopped (everything already
committed is unchanged and costs nothing). A file that cannot be read or parsed is recorded as a
failure and skipped; it never aborts the run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from finesift.errors import FinesiftError, InvalidRequest, TooLarge
from finesift.ingest.chunking import TokenCounter, chunk_document
from finesift.ingest.limits import NO_CAPS, Caps, refusal
from finesift.ingest.loaders import file_type_of, load_bytes
from finesift.ingest.normalize import normalize_text
from finesift.ingest.workers import parser_for
from finesift.lexical import tokenize
from finesift.store.base import DocumentWrite, VectorStore
from finesift.types import Chunk, Document, DocumentInfo, Failure, IndexReport

if TYPE_CHECKING:
    from finesift.kb.manifest import Manifest
    from finesift.settings import KBSettings

log = logging.getLogger(__name__)
#: Called after each source with (done, total, source).
Progress = Callable[[int, int, str], None]


def doc_id_for(source: str) -> str:
    """A stable id for a source: 16 hex digits of its BLAKE2b digest."""
    return hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


_SURROGATE = re.compile("[\ud800-\udfff]")
_BYTE = r"x[89a-f][0-9a-f]|ud[89a-f][0-9a-f]{2}"
_ESCAPED = re.compile(rf"\\(?:{_BYTE})")
_ESCAPE = re.compile(rf"\\(\\|{_BYTE})")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def source_name(path: str | Path) -> str:
    """The source recorded for a file: its path, made valid UTF-8 without losing anything.

    A path that is valid UTF-8 is recorded as it is. In one that is not (``b"caf\\xe9.md"``, which
    Python names ``"caf\\udce9.md"``), each backslash is doubled and each byte that is not UTF-8 is
    written ``\\xNN``: ``caf\\xe9.md``. :func:`source_path` reverses it.
    """
    text = str(path)
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(lambda m: _escape(m.group()), text.replace("\\", "\\\\"))


def source_path(source: str) -> Path:
    """The file path a source was recorded from (the inverse of :func:`source_name`).

    A source holding no ``\\xNN`` escape of a byte over 127 is the path itself.
    """
    if not _ESCAPED.search(source):
        return Path(source)

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        if code == "\\":
            return code
        return chr(0xDC00 + int(code[1:], 16)) if code[0] == "x" else chr(int(code[1:], 16))

    return Path(_ESCAPE.sub(unescape, source))


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in ("__pycache__", "node_modules")


@dataclass
class Collected:
    """Files to index and the entries skipped on the way, with reasons."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)


def walk_files(folder: Path, skipped: list[Failure]) -> list[Path]:
    """Files under ``folder`` in walk order (hidden entries skipped, symlinked folders not followed).

    A folder that cannot be listed is appended to ``skipped`` with the reason.
    """

    def unreadable(exc: OSError) -> None:
        where = source_name(exc.filename if exc.filename else folder)
        skipped.append(Failure(where, f"{where}: cannot read the folder ({exc.strerror or exc}); skipped"))

    found: list[Path] = []
    for root, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        found.extend(Path(root) / name for name in sorted(files) if not _hidden(name))
    return found


def find_files(paths: Sequence[str | Path]) -> Collected:
    """Regular files under ``paths`` (see :func:`collect_files`), and what was skipped: folders that
    cannot be read, named paths that are neither a file nor a folder (a FIFO, a device)."""
    if not paths:
        raise InvalidRequest("no path given; pass files or folders to index")
    out = Collected()
    found: dict[str, Path] = {}
    for raw in paths:
        if "\x00" in str(raw):
            raise InvalidRequest("a path contains a NUL byte")
        path = Path(raw).expanduser().absolute()
        if not path.exists():
            raise InvalidRequest(f"{source_name(raw)}: no such file or folder")
        if path.is_dir():
            found.update((str(f), f) for f in walk_files(path, out.skipped))
        elif path.is_file():
            found[str(path)] = path
        else:
            name = source_name(path)
            out.skipped.append(Failure(name, f"{name}: not a regular file or folder; skipped"))
    out.files = [found[k] for k in sorted(found)]
    return out


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """Regular files under ``paths`` (recursively, hidden entries skipped), absolute, deduplicated, sorted."""
    return find_files(paths).files


@dataclass
class _Batch:
    documents: list[tuple[DocumentInfo, list[Chunk], bool]] = field(default_factory=list)
    chunks: int = 0


@dataclass
class IndexJob:
    """One indexing run over a store; counts what it did."""

    store: VectorStore
    embed: Callable[[list[str]], np.ndarray]
    count_tokens: TokenCounter
    pipeline: str
    chunk_size: int
    chunk_overlap: int
    commit_chunks: int = 256
    max_bytes: int = 64 << 20
    #: Parses a file's bytes (``load_bytes``, or a worker pool with time and memory limits).
    parse: Callable[[bytes, str], Document] = load_bytes
    caps: Caps = NO_CAPS
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    _batch: _Batch = field(default_factory=_Batch)

    def __post_init__(self) -> None:
        self.known = {d.doc_id: d for d in self.store.snapshot().documents()}

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, failure: Failure) -> None:
        """Count ``failure`` (a source not indexed) and list it in the report."""
        log.info("skipped %s", failure.reason)
        self.failures.append(failure)
        self._count("documents_failed")

    def _refuse(self, source: str, exc: FinesiftError) -> None:
        self.fail(Failure(source, str(exc), too_large=isinstance(exc, TooLarge)))

    def _read(self, path: Path, source: str) -> bytes | None:
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                self.fail(Failure(source, f"{source}: not a regular file"))
                return None
            if info.st_size > self.max_bytes:
                what = f"{info.st_size} bytes is over the {self.max_bytes}-byte limit"
                self._refuse(source, refusal(source, what, "kb.max_file_mb"))
                return None
            return path.read_bytes()
        except OSError as exc:
            self.fail(Failure(source, f"{source}: cannot read ({exc.strerror or exc})"))
            return None

    def add_file(self, path: Path) -> None:
        """Index one file unless its content and pipeline are unchanged (recorded as :func:`source_name`)."""
        source = source_name(path)
        data = self._read(path, source)
        if data is not None:
            self.add_bytes(source, data, loader=lambda: self.parse(data, source))

    def add_bytes(self, source: str, data: bytes, *, loader: Callable[[], Document]) -> None:
        """Index a source given its raw bytes (hashed) and how to parse them."""
        prepared = self.prepare(source, data, loader=loader)
        if prepared is None:
            return
        self._batch.documents.append(prepared)
        self._batch.chunks += len(prepared[1])
        if self._batch.chunks >= self.commit_chunks:
            self.flush()

    def prepare(
        self, source: str, data: bytes, *, loader: Callable[[], Document]
    ) -> tuple[DocumentInfo, list[Chunk], bool] | None:
        """Parse and chunk a source: its record, chunks and whether it replaces a stored one; ``None``
        when it is unchanged or failed (counted here)."""
        content_hash = hashlib.sha256(data).hexdigest()
        doc_id = doc_id_for(source)
        old = self.known.get(doc_id)
        if old is not None and old.content_hash == content_hash and old.pipeline == self.pipeline:
            self._count("documents_unchanged")
            self.stored.append(source)
            return None
        try:
            document = loader()
            self.caps.check_chars(source, len(document.text))
            chunks = chunk_document(
                document,
                doc_id,
                count=self.count_tokens,
                size=self.chunk_size,
                overlap=self.chunk_overlap,
                caps=self.caps,
            )
        except FinesiftError as exc:
            self._refuse(source, exc)
            return None
        info = DocumentInfo(
            doc_id,
            source,
            document.file_type,
            content_hash,
            self.pipeline,
            len(chunks),
            len(document.text),
            len(document.page_starts),
            len(data),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        return info, chunks, old is not None

    def flush(self) -> None:
        """Embed and commit the pending documents in one atomic commit."""
        batch, self._batch = self._batch, _Batch()
        if not batch.documents:
            return
        texts = [c.text for _, chunks, _ in batch.documents for c in chunks]
        vectors = self.embed(texts) if texts else np.zeros((0, self.store.dimension), np.float32)
        self.write(batch.documents, vectors)

    def write(self, documents: list[tuple[DocumentInfo, list[Chunk], bool]], vectors: np.ndarray) -> None:
        """Commit prepared documents with their chunks' vectors (rows in chunk order) atomically."""
        writes, offset = [], 0
        for info, chunks, _ in documents:
            rows = vectors[offset : offset + len(chunks)]
            offset += len(chunks)
            writes.append(DocumentWrite(info, chunks, rows, [tokenize(c.text) for c in chunks]))
        self.store.commit(upserts=writes)
        self._count("chunks_embedded", offset)
        for info, _, updated in documents:
            self.known[info.doc_id] = info
            self.stored.append(info.source)
            self._count("documents_updated" if updated else "documents_added")

    def prune(self, roots: Iterable[Path], seen: set[str]) -> None:
        """Delete documents stored from under ``roots`` whose files were not seen in this run."""
        prefixes = [source_name(r) if r.is_file() else source_name(r).rstrip(os.sep) + os.sep for r in roots]
        gone = [
            d.doc_id
            for d in self.known.values()
            if d.source not in seen and any(d.source == p or d.source.startswith(p) for p in prefixes)
        ]
        if gone:
            self.store.commit(deletes=gone)
            self._count("documents_removed", len(gone))

    def report(self) -> IndexReport:
        return IndexReport(**self.counts, failures=tuple(self.failures), stored=tuple(self.stored))


_Job = TypeVar("_Job", bound=IndexJob)


def prepared_loader(doc: Document) -> Callable[[], Document]:
    """A loader for an in-memory document: its text normalised like a file's (paged text kept as is)."""

    def load() -> Document:
        if doc.page_starts:
            return doc
        text = normalize_text(doc.text)
        if not text.strip():
            raise InvalidRequest(f"{doc.source}: no text to index")
        return replace(doc, text=text, file_type=doc.file_type or file_type_of(doc.source))

    return load


def content_tokens(count: Callable[[Sequence[str]], list[int]], texts: Sequence[str]) -> list[int]:
    """Tokens per text as chunking counts them: without the model's own special tokens, at least 1."""
    overhead = count([""])[0]
    return [max(n - overhead, 1) for n in count(list(texts))]


def configured_job(
    kind: type[_Job],
    manifest: Manifest,
    kb: KBSettings,
    store: VectorStore,
    embed: Callable[[list[str]], np.ndarray],
    count_tokens: Callable[[Sequence[str]], list[int]],
) -> _Job:
    """An indexing job of ``kind`` with the KB's pipeline and chunking and ``kb``'s limits and parser."""
    return kind(
        store,
        embed,
        count_tokens,
        manifest.pipeline,
        manifest.chunk_size,
        manifest.chunk_overlap,
        commit_chunks=kb.commit_chunks,
        max_bytes=int(kb.max_file_mb * (1 << 20)),
        parse=parser_for(kb),
        caps=Caps.from_settings(kb),
    )
