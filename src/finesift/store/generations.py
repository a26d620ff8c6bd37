"""Shared pieces of the server-backed stores (Milvus, pgvector): location file, rows, BM25, visibility.

Both keep every document *version* as rows tagged with ``gen``, the commit sequence number that
wrote it, and mark a replaced or deleted version with ``superseded`` (the seq that replaced it; 0
while live). A snapshot at commit ``V`` sees a version when ``gen <= V`` and it is not superseded at
``V`` (``superseded == 0 or superseded > V``). Superseded versions are purged once no snapshot can
need them any more (``retention_s`` after they were replaced), so a held snapshot stays frozen for
that long.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finesift.errors import InvalidRequest, StoreError
from finesift.lexical import BM25Index
from finesift.store.base import DocumentWrite, Filters, ScoredChunk
from finesift.types import Chunk, DocumentInfo

LOCATION = "remote.json"
#: How long (seconds) a superseded document version stays readable for snapshots that hold it.
DEFAULT_RETENTION_S = 600.0
_NAME = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True)
class Location:
    """Where a KB's data lives on a server: the URI (no secrets) and the collection/table prefix."""

    uri: str
    prefix: str


def new_prefix(path: Path) -> str:
    """A fresh, server-safe collection prefix for the KB stored under ``path`` (``<kb>/store``)."""
    stem = path.parent.name
    if stem.startswith(".staging-"):
        stem = stem[len(".staging-") :].rsplit("-", 1)[0]
    stem = _NAME.sub("_", stem).strip("_").lower()[:32] or "kb"
    return f"fs_{stem}_{secrets.token_hex(4)}"


def write_location(path: Path, location: Location) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if (path / LOCATION).exists():
        raise StoreError(f"{path} already holds a store")
    (path / LOCATION).write_text(json.dumps(dataclasses.asdict(location), indent=1), encoding="utf-8")


def read_location(path: Path) -> Location:
    try:
        data = json.loads((path / LOCATION).read_text(encoding="utf-8"))
        return Location(str(data["uri"]), str(data["prefix"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path} is not a finesift server store ({LOCATION} unreadable: {exc})") from exc


def info_json(info: DocumentInfo) -> str:
    return json.dumps(dataclasses.asdict(info), ensure_ascii=False)


def info_from_json(text: str) -> DocumentInfo:
    return DocumentInfo(**json.loads(text))


def chunk_rows(write: DocumentWrite, gen: int) -> list[dict[str, Any]]:
    """One plain row per chunk of ``write`` at generation ``gen`` (``page`` -1 when absent)."""
    key = f"{write.info.doc_id}@{gen}"
    return [
        {
            "pk": f"{c.chunk_id}@{gen}", "doc_key": key, "doc_id": c.doc_id, "gen": gen, "superseded": 0,
            "idx": c.index,
            "source": c.source, "file_type": c.file_type, "text": c.text, "start": c.start, "end": c.end,
            "page": -1 if c.page is None else c.page, "terms": json.dumps(list(t), ensure_ascii=False),
            "vector": np.asarray(v, dtype=np.float32),
        }
        for c, v, t in zip(write.chunks, write.vectors, write.terms, strict=True)
    ]  # fmt: skip


def chunk_from_row(row: dict[str, Any]) -> Chunk:
    page = int(row["page"])
    return Chunk(
        row["doc_id"], int(row["idx"]), row["text"], int(row["start"]), int(row["end"]),
        None if page < 0 else page, row["source"], row["file_type"],
    )  # fmt: skip


def sorted_hits(hits: list[ScoredChunk], k: int) -> list[ScoredChunk]:
    """Best first, ties by (doc_id, index): the order every store returns."""
    return sorted(hits, key=lambda h: (-h.score, h.chunk.doc_id, h.chunk.index))[:k]


def check_doc_ids(ids: Sequence[str]) -> None:
    for value in ids:
        if not value or "@" in value or "\x00" in value:
            raise InvalidRequest(f"invalid document id {value!r}: it must be non-empty, without '@' or NUL")


class Lexical:
    """BM25 over a snapshot's chunks from their stored term lists (no re-tokenising)."""

    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        vocab: dict[str, int] = {}
        codes: list[int] = []
        lengths: list[int] = []
        for row in rows:
            terms = json.loads(row["terms"])
            codes.extend(vocab.setdefault(t, len(vocab)) for t in terms)
            lengths.append(len(terms))
        self.chunk_ids = [f"{r['doc_id']}:{int(r['idx'])}" for r in rows]
        self.attrs = [(r["source"], r["file_type"], r["doc_id"]) for r in rows]
        self.index = BM25Index.from_codes(
            self.chunk_ids,
            vocab=list(vocab),
            codes=np.asarray(codes, np.int64),
            lengths=np.asarray(lengths, np.int64),
        )

    def top(self, terms: Sequence[str], k: int, filters: Filters | None) -> list[tuple[str, float]]:
        """The ``k`` best (chunk_id, score) with a positive score; ties by storage order."""
        scores = self.index.scores_for_terms(terms)
        if filters is not None and not filters.empty:
            mask = [filters.accepts(source=s, file_type=t, doc_id=d) for s, t, d in self.attrs]
            scores = np.where(np.asarray(mask, bool), scores, 0.0)
        hits = np.flatnonzero(scores > 0)
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return [(self.chunk_ids[i], float(scores[i])) for i in order]


def as_array(value: Any) -> np.ndarray:
    """A stored vector as float32 (pgvector returns its own ``Vector`` type)."""
    to_numpy = getattr(value, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy is not None else value, np.float32)


def export_writes(
    infos: Sequence[DocumentInfo], rows: Sequence[dict[str, Any]], dimension: int
) -> list[DocumentWrite]:
    """Rebuild :class:`DocumentWrite` objects from stored chunk rows (with ``terms`` and ``vector``)."""
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_doc.setdefault(row["doc_id"], []).append(row)
    out = []
    for info in infos:
        part = sorted(by_doc.get(info.doc_id, []), key=lambda r: int(r["idx"]))
        vectors = np.asarray([as_array(r["vector"]) for r in part], np.float32)
        out.append(
            DocumentWrite(
                info,
                [chunk_from_row(r) for r in part],
                vectors.reshape(len(part), dimension),
                [json.loads(r["terms"]) for r in part],
            )
        )
    return out
