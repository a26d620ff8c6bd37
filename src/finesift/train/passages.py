"""Where synthesis takes its passages from: a knowledge base's chunks, a BEIR corpus, or files."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from finesift.embedding.embedder import Embedder
from finesift.errors import FinesiftError, InvalidRequest

if TYPE_CHECKING:
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.settings import KBSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Passage:
    """One passage to write queries for; ``id`` becomes the BEIR corpus id."""

    id: str
    text: str
    source: str = ""


def fingerprint(passages: Sequence[Passage]) -> str:
    """A digest of the passages' ids and texts, in order."""
    digest = hashlib.sha256()
    for p in passages:
        digest.update(p.id.encode() + b"\x00" + p.text.encode() + b"\x01")
    return digest.hexdigest()[:32]


def from_kb(kb: KnowledgeBase) -> list[Passage]:
    """Every chunk of an open knowledge base, ids ``<doc_id>#<index>``, documents by source."""
    snapshot = kb.snapshot()
    passages = []
    for info in snapshot.documents():
        for chunk in snapshot.chunks(info.doc_id):
            if chunk.text.strip():
                passages.append(Passage(f"{info.doc_id}#{chunk.index}", chunk.text, info.source))
    if not passages:
        raise InvalidRequest("the knowledge base has no chunks to write queries for; add documents first")
    return passages


def from_corpus(
    path: Path, *, embedder: Embedder, chunk_size: int, chunk_overlap: int, kb: KBSettings
) -> list[Passage]:
    """A BEIR folder's ``corpus.jsonl`` (one passage per document), or files chunked as a KB would.

    Files are read as ``finesift index`` reads them, under ``kb``'s limits: the file size cap, PDF,
    DOCX and HTML parsed in the worker pool (time and memory bounded), the character, chunk and token
    caps; a file refused by any of them is skipped and reported (a warning naming the file and cap).
    """
    path = path.expanduser()
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        return _beir(path / "corpus.jsonl")
    if path.is_file() and path.name.endswith(".jsonl"):
        return _beir(path)
    return _files(path, _reader(embedder, kb, size=chunk_size, overlap=chunk_overlap))


def _beir(path: Path) -> list[Passage]:
    from finesift.eval.datasets import _read_corpus

    ids, texts, empty = _read_corpus(path)
    if empty:
        log.warning("%s: %d empty documents skipped", path, empty)
    if not ids:
        raise InvalidRequest(f"{path}: no documents with text")
    return [Passage(i, t) for i, t in zip(ids, texts, strict=True)]


def _files(path: Path, read: Callable[[Path, str], list[Passage]]) -> list[Passage]:
    from finesift.ingest.loaders import file_type_of, loader_for
    from finesift.kb.indexing import collect_files

    root = path.absolute() if path.is_dir() else path.absolute().parent
    passages: list[Passage] = []
    skipped = 0
    for file in collect_files([path]):
        if loader_for(file_type_of(file)) is None:
            continue
        source = file.relative_to(root).as_posix()
        try:
            passages += read(file, source)
        except (FinesiftError, OSError) as exc:
            skipped += 1
            log.warning("skipped %s: %s", source, exc)
    if skipped:
        log.warning("%d file(s) skipped (see above); %d passages from the others", skipped, len(passages))
    if not passages:
        raise InvalidRequest(f"{path}: no supported files with text (BEIR folders need corpus.jsonl)")
    return passages


def _reader(
    embedder: Embedder, kb: KBSettings, *, size: int, overlap: int
) -> Callable[[Path, str], list[Passage]]:
    """Reads one file into passages under ``kb``'s caps, parse limits and chunking."""
    from finesift.ingest.chunking import chunk_document
    from finesift.ingest.workers import parser_for

    parse, max_bytes = parser_for(kb), int(kb.max_file_mb * 2**20)

    def read(file: Path, source: str) -> list[Passage]:
        size = file.stat().st_size
        if size > max_bytes:
            raise InvalidRequest(f"{size} bytes is over the {max_bytes}-byte limit (kb.max_file_mb)")
        document = parse(file.read_bytes(), source)
        parse.caps.check_chars(source, len(document.text))
        chunks = chunk_document(
            document, source, count=embedder.backend.count_tokens, size=size, overlap=overlap,
            caps=parse.caps,
        )  # fmt: skip
        return [Passage(f"{source}#{c.index}", c.text, source) for c in chunks if c.text.strip()]

    return read
