"""Hard negatives: those the data gives, topped up from the corpus by the current model.

For every pair that has fewer than K negatives, the corpus is ranked for its query by the embedder
being trained (formatted and pooled exactly as at inference); the highest-ranked texts that are not a
positive of that query (nor already its negative) fill the remaining slots. The false-negative mask
of the loss still guards against near-duplicates of the positive that slip through.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from finesift.train.checkpoint import write_json
from finesift.train.data import TrainData
from finesift.train.progress import Progress

log = logging.getLogger(__name__)
MINED = "finesift-mined-negatives.json"


def negatives_for(
    data: TrainData, encoder: Any, k: int, out: Path, *, progress: bool = False
) -> list[tuple[str, ...]]:
    """K negatives per pair (fewer only when the corpus runs out), cached in ``out`` for --resume."""
    if k <= 0:
        return [() for _ in data.pairs]
    cache = out / MINED
    if cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("fingerprint") == data.fingerprint and saved.get("k") == k:
            return [tuple(row) for row in saved["negatives"]]
    result = [tuple(p.negatives[:k]) for p in data.pairs]
    short = [i for i, row in enumerate(result) if len(row) < k]
    if short:
        log.info(
            "mining hard negatives for %d of %d pairs from %d texts",
            len(short),
            len(result),
            len(data.corpus),
        )
        mined = mine(data, encoder, short, k, progress=progress)
        for i, extra in zip(short, mined, strict=True):
            result[i] = (*result[i], *extra)[:k]
    write_json(cache, {"fingerprint": data.fingerprint, "k": k, "negatives": [list(r) for r in result]})
    return result


def mine(
    data: TrainData, encoder: Any, rows: list[int], k: int, *, chunk: int = 256, progress: bool = False
) -> list[list[str]]:
    """For each pair index in ``rows``: the top texts of the corpus that are no positive of its query.

    The corpus and the queries are embedded ``chunk`` texts at a time (shown as progress), so the
    memory the embedder needs is that of one chunk, whatever the corpus size.
    """
    positives: dict[str, set[str]] = {}
    for pair in data.pairs:
        positives.setdefault(pair.query, set()).add(pair.positive)
    corpus = list(data.corpus)
    queries = sorted({data.pairs[i].query for i in rows})
    was_training = encoder.modules.training
    encoder.modules.eval()
    shown = Progress(len(corpus) + len(queries), desc="mining hard negatives", unit="text", enabled=progress)
    try:
        with shown:
            docs = embed_in_chunks(encoder.embedder.embed_documents, corpus, shown, chunk)
            ranked: dict[str, list[int]] = {}
            depth = min(len(corpus), k + max(len(v) for v in positives.values()) + 8 * k)
            for start in range(0, len(queries), chunk):
                part = queries[start : start + chunk]
                scores = embed_in_chunks(encoder.embedder.embed_queries, part, shown, chunk) @ docs.T
                top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
                ranked.update({q: top[n].tolist() for n, q in enumerate(part)})
    finally:
        encoder.modules.train(was_training)
    out: list[list[str]] = []
    for i in rows:
        pair = data.pairs[i]
        skip = positives[pair.query] | set(pair.negatives)
        picked = [corpus[j] for j in ranked[pair.query] if corpus[j] not in skip]
        out.append(picked[: k - len(pair.negatives[:k])])
    return out


def embed_in_chunks(embed: Any, texts: list[str], shown: Progress, chunk: int = 256) -> np.ndarray:
    """(n, d) float32: ``embed`` called ``chunk`` texts at a time without gradients, progress shown."""
    import torch

    parts = []
    for start in range(0, len(texts), chunk):
        with torch.no_grad():
            parts.append(np.asarray(embed(texts[start : start + chunk]), dtype=np.float32))
        shown.update(len(parts[-1]))
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
