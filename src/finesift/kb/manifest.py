"""A knowledge base on disk: its validated name, its directory, ``kb.json``, the fingerprint and the lock.

Layout of ``HOME/kbs/NAME/``: ``kb.json`` (written once, at creation: models, dimension,
instruction, chunking, the embedder's fingerprint), ``store/`` (the vector store), ``.lock`` (held
by the one writer). A KB is created in a hidden staging directory and renamed into place, so it
either exists completely or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finesift.errors import Conflict, InvalidRequest, NotFound, StoreError
from finesift.fsutil import write_json_atomic

FORMAT = 1
MANIFEST = "kb.json"
#: Bump when loaders or chunking change what a file turns into: every document is then re-indexed.
PIPELINE_VERSION = 1
LOCK = ".lock"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Fingerprint keys that identify a model only by how the user named it (a moved directory keeps its
#: revision digest), so they are reported but not compared.
_DISPLAY_ONLY = frozenset({"model"})


def validate_name(name: object) -> str:
    """A KB name: 1-64 letters, digits, ``_``, ``.``, ``-``, starting with a letter or digit; never a path."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidRequest(
            f"invalid knowledge base name {name!r}: use 1-64 letters, digits, '_', '.', '-', starting with a "
            "letter or digit"
        )
    return name


def kbs_dir(home: Path) -> Path:
    return Path(home).expanduser().absolute() / "kbs"


def kb_dir(home: Path, name: str) -> Path:
    return kbs_dir(home) / validate_name(name)


def list_names(home: Path) -> list[str]:
    """Names of the complete knowledge bases under ``home``, sorted."""
    root = kbs_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if _NAME.fullmatch(p.name) and (p / MANIFEST).is_file())


@dataclass(frozen=True)
class Manifest:
    """What a KB records at creation. ``fingerprint`` is the embedder's, plus the dimension used."""

    name: str
    store: str
    embedding_model: str
    embedding_revision: str | None
    dim: int
    instruction: str
    max_length: int
    reranker_model: str | None
    chunk_size: int
    chunk_overlap: int
    fingerprint: dict[str, Any]
    created_at: str
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pipeline(self) -> str:
        """A digest of everything that shapes stored chunks and vectors (compared per document)."""
        key = {
            "fp": self.fingerprint,
            "size": self.chunk_size,
            "overlap": self.chunk_overlap,
            "v": PIPELINE_VERSION,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def store_path(path: Path, manifest: Manifest) -> Path:
    """The KB's store directory: ``store``, or the one a migration switched to (``extra.store_dir``)."""
    return path / str(manifest.extra.get("store_dir", "store"))


def read_manifest(path: Path, name: str) -> Manifest:
    file = path / MANIFEST
    if not file.is_file():
        raise NotFound(f"no knowledge base named {name!r}; create it with `finesift index PATH --kb {name}`")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise StoreError(
                f"knowledge base {name!r} has format {data.get('format')}; this finesift reads {FORMAT}"
            )
        return Manifest(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise StoreError(
            f"the manifest of knowledge base {name!r} is unreadable ({exc}); drop and re-index it"
        ) from exc


def write_manifest(path: Path, manifest: Manifest) -> None:
    write_json_atomic(path / MANIFEST, asdict(manifest))


def fingerprint_mismatch(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: recorded != current`` for every differing key that determines the vectors."""
    keys = sorted((set(recorded) | set(current)) - _DISPLAY_ONLY)
    return [
        f"{k}: {recorded.get(k)!r} != {current.get(k)!r}" for k in keys if recorded.get(k) != current.get(k)
    ]


def check_fingerprint(name: str, recorded: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse an embedder whose vectors would not be comparable with the KB's."""
    diffs = fingerprint_mismatch(recorded, current)
    if diffs:
        raise Conflict(
            f"knowledge base {name!r} was built with embedder {recorded.get('model')!r} and this embedder "
            f"({current.get('model')!r}) differs: {'; '.join(diffs[:4])}. Use the KB's model and settings, "
            "or index into a new knowledge base"
        )


@contextmanager
def writer_lock(path: Path, name: str) -> Iterator[None]:
    """Hold the KB's exclusive writer lock, or fail at once if another writer holds it.

    The lock is an ``flock`` on ``.lock``: the kernel drops it when the holder exits, even on kill -9.
    """
    import fcntl

    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise Conflict(
                f"knowledge base {name!r} is being written by {holder}; wait for it to finish and retry"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)
