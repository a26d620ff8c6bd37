"""On-disk cache of embeddings, keyed by the model's fingerprint and a hash of the data.

Comparing modes, dimensions or rerankers then encodes a corpus once. Entries are ``<key>.npy``
(full-dimension, L2-normalised float32 vectors) plus ``<key>.json`` (what produced them and how
long it took); the JSON is written last, so a half-written entry is never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedVectors:
    """Vectors (n, d) float32 and the metadata stored with them (``seconds``: original encode time)."""

    vectors: np.ndarray
    meta: dict[str, Any]


def cache_key(fingerprint: Mapping[str, object], data_hash: str, side: str) -> str:
    """A stable key: sha256 of the canonical JSON of fingerprint, data hash and side (documents/queries)."""
    blob = json.dumps(
        {"fingerprint": fingerprint, "data": data_hash, "side": side}, sort_keys=True, default=str
    )
    return f"{side}-{hashlib.sha256(blob.encode('utf-8')).hexdigest()[:40]}"


class EmbeddingCache:
    """A directory of cached embeddings; ``root=None`` disables caching."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def load(self, key: str, count: int) -> CachedVectors | None:
        """The entry for ``key`` when it exists and holds ``count`` rows; otherwise ``None``."""
        if self.root is None:
            return None
        meta_file, data_file = self.root / f"{key}.json", self.root / f"{key}.npy"
        if not meta_file.is_file() or not data_file.is_file():
            return None
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            vectors = np.load(data_file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable cache entry %s: %s", key, exc)
            return None
        if vectors.ndim != 2 or vectors.shape[0] != count or vectors.dtype != np.float32:
            log.warning(
                "ignoring cache entry %s: shape %s does not match %d texts", key, vectors.shape, count
            )
            return None
        return CachedVectors(vectors, meta)

    def save(self, key: str, vectors: np.ndarray, meta: Mapping[str, Any]) -> None:
        """Store an entry atomically; a failure to write only logs a warning."""
        if self.root is None:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write(self.root / f"{key}.npy", lambda fh: np.save(fh, vectors, allow_pickle=False))
            text = json.dumps(dict(meta), indent=1, sort_keys=True, default=str).encode("utf-8")
            _atomic_write(self.root / f"{key}.json", lambda fh: fh.write(text))
        except OSError as exc:
            log.warning("could not write the embedding cache in %s: %s", self.root, exc)


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
