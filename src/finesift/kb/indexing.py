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
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from finesift.errors import FinesiftError, InvalidRequest
from finesift.ingest.chunking import TokenCounter, chunk_document
from finesift.ingest.limits import NO_CAPS, Caps
from finesift.ingest.loaders import load_bytes
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


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in ("__pycache__", "node_modules")


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """Regular files under ``paths`` (recursively, hidden entries skipped), absolute, deduplicated, sorted."""
    if not paths:
        raise InvalidRequest("no path given; pass files or folders to index")
    found: dict[str, Path] = {}
    for raw in paths:
        if "\x00" in str(raw):
            raise InvalidRequest("a path contains a NUL byte")
        path = Path(raw).expanduser().absolute()
        if not path.exists():
            raise InvalidRequest(f"{raw}: no such file or folder")
        if path.is_file():
            found[str(path)] = path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            for name in files:
                if not _hidden(name):
                    found[os.path.join(root, name)] = Path(root) / name
    return [found[k] for k in sorted(found)]


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

    def _fail(self, source: str, reason: str) -> None:
        log.info("skipped %s", reason)
        self.failures.append(Failure(source, reason))
        self._count("documents_failed")

    def _read(self, path: Path) -> bytes | None:
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                self._fail(str(path), f"{path}: not a regular file")
                return None
            if info.st_size > self.max_bytes:
                self._fail(str(path), f"{path}: {info.st_size} bytes is over the {self.max_bytes}-byte limit")
                return None
            return path.read_bytes()
        except OSError as exc:
            self._fail(str(path), f"{path}: cannot read ({exc.strerror or exc})")
            return None

    def add_file(self, path: Path) -> None:
        """Index one file unless its content and pipeline are unchanged."""
        data = self._read(path)
        if data is not None:
            self.add_bytes(str(path), data, loader=lambda: self.parse(data, str(path)))

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
            self._fail(source, str(exc))
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
        prefixes = [str(r) if r.is_file() else str(r).rstrip(os.sep) + os.sep for r in roots]
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
