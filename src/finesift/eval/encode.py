"""Encoding a whole corpus or query set: length-sorted chunks, a progress bar, and the cache."""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from finesift.embedding.embedder import Embedder, InputType
from finesift.eval.cache import EmbeddingCache, cache_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """Full-dimension L2-normalised vectors (n, d) float32; encode time (of the original run when cached)."""

    vectors: np.ndarray
    seconds: float
    truncated: int
    cached: bool


def texts_hash(ids: Sequence[str], texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for item_id, text in zip(ids, texts, strict=True):
        digest.update(item_id.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
    return digest.hexdigest()[:32]


class _DropTruncationWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "were truncated" not in record.getMessage()


@contextmanager
def _quiet_truncation() -> Iterator[None]:
    """The per-chunk truncation warnings are summed and reported once instead."""
    target = logging.getLogger("finesift.embedding.embedder")
    quiet = _DropTruncationWarnings()
    target.addFilter(quiet)
    try:
        yield
    finally:
        target.removeFilter(quiet)


@dataclass(frozen=True)
class EncodeRequest:
    """What to encode: ``side`` is documents or queries; ``extra`` joins the model fingerprint in the key."""

    input_type: InputType
    ids: Sequence[str]
    texts: Sequence[str]
    instruction: str | None
    extra: dict[str, Any]
    data_hash: str = ""


def encode_cached(
    embedder: Embedder, request: EncodeRequest, *, cache: EmbeddingCache, chunk: int, progress: bool
) -> Encoded:
    """Vectors for ``request.texts`` from the cache, or encoded (and then stored)."""
    fingerprint = {**embedder.fingerprint(policy=False), **request.extra}
    data_hash = request.data_hash or texts_hash(request.ids, request.texts)
    key = cache_key(fingerprint, data_hash, request.input_type)
    hit = cache.load(key, len(request.texts))
    if hit is not None:
        log.info("using cached %s embeddings %s", request.input_type, key)
        return Encoded(
            hit.vectors, float(hit.meta.get("seconds", 0.0)), int(hit.meta.get("truncated", 0)), True
        )
    start = time.perf_counter()
    vectors, truncated = encode_texts(embedder, request, chunk=chunk, progress=progress)
    seconds = time.perf_counter() - start
    if truncated:
        log.warning(
            "%d of %d %ss exceeded %d tokens and were truncated (the model's limit)",
            truncated,
            len(request.texts),
            request.input_type,
            embedder.info.max_length,
        )
    meta = {
        "fingerprint": fingerprint,
        "data": data_hash,
        "count": len(request.texts),
        "dimension": int(vectors.shape[1]),
        "seconds": seconds,
        "truncated": truncated,
    }
    cache.save(key, vectors, meta)
    return Encoded(vectors, seconds, truncated, False)


def encode_texts(
    embedder: Embedder, request: EncodeRequest, *, chunk: int, progress: bool
) -> tuple[np.ndarray, int]:
    """(n, d) vectors in input order and the number of truncated texts, longest texts first."""
    texts = request.texts
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    truncated = 0
    label = "encoding documents" if request.input_type == "document" else "encoding queries"
    bar = tqdm(total=len(texts), desc=label, unit="text", disable=not progress, file=sys.stderr, leave=False)
    with bar, _quiet_truncation():
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            enc = embedder.encode(
                [texts[i] for i in rows], input_type=request.input_type, instruction=request.instruction
            )
            out[rows] = enc.vectors
            truncated += enc.truncated
            bar.update(len(rows))
    return out, truncated
