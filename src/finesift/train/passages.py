"""Where synthesis takes its passages from: a knowledge base's chunks, a BEIR corpus, or files."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from finesift.embedding.embedder import Embedder
from finesift.errors import InvalidRequest

if TYPE_CHECKING:
    from finesift.kb.knowledge_base import KnowledgeBase

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


def from_corpus(path: Path, *, embedder: Embedder, chunk_size: int, chunk_overlap: int) -> list[Passage]:
    """A BEIR folder's ``corpus.jsonl`` (one passage per document), or files chunked as a KB would."""
    path = path.expanduser()
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        return _beir(path / "corpus.jsonl")
    if path.is_file() and path.name.endswith(".jsonl"):
        return _beir(path)
    return _files(path, embedder=embedder, chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def _beir(path: Path) -> list[Passage]:
    from finesift.eval.datasets import _read_corpus

    ids, texts, empty = _read_corpus(path)
    if empty:
        log.warning("%s: %d empty documents skipped", path, empty)
    if not ids:
        raise InvalidRequest(f"{path}: no documents with text")
    return [Passage(i, t) for i, t in zip(ids, texts, strict=True)]


def _files(path: Path, *, embedder: Embedder, chunk_size: int, chunk_overlap: int) -> list[Passage]:
    from finesift.ingest.chunking import chunk_document
    from finesift.ingest.loaders import file_type_of, load_bytes, loader_for
    from finesift.kb.indexing import collect_files

    root = path.absolute() if path.is_dir() else path.absolute().parent
    passages = []
    for file in collect_files([path]):
        if loader_for(file_type_of(file)) is None:
            continue
        source = file.relative_to(root).as_posix()
        document = load_bytes(file.read_bytes(), source)
        chunks = chunk_document(
            document, source, count=embedder.backend.count_tokens, size=chunk_size, overlap=chunk_overlap
        )
        passages += [Passage(f"{source}#{c.index}", c.text, source) for c in chunks if c.text.strip()]
    if not passages:
        raise InvalidRequest(f"{path}: no supported files with text (BEIR folders need corpus.jsonl)")
    return passages
