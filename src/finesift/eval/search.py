"""Exact nearest-neighbour search over L2-normalised vectors (cosine = dot product), in numpy."""

from __future__ import annotations

import numpy as np

from finesift.errors import InvalidRequest

QUERY_BLOCK = 1024


def exact_search(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by dot product: (indices (nq, k') int64, scores (nq, k') float32), best first, k' = min(k, nd).

    Ties are broken by the lower document index. Queries are processed in blocks so memory stays
    at ``QUERY_BLOCK x nd`` floats.
    """
    if queries.ndim != 2 or docs.ndim != 2 or queries.shape[1] != docs.shape[1]:
        raise InvalidRequest(f"query vectors {queries.shape} and document vectors {docs.shape} do not match")
    if k < 1:
        raise InvalidRequest(f"k must be positive, not {k}")
    top = min(k, docs.shape[0])
    out_idx = np.zeros((queries.shape[0], top), dtype=np.int64)
    out_scores = np.zeros((queries.shape[0], top), dtype=np.float32)
    for start in range(0, queries.shape[0], QUERY_BLOCK):
        block = queries[start : start + QUERY_BLOCK] @ docs.T
        idx, scores = _top_k(block, top)
        out_idx[start : start + len(block)] = idx
        out_scores[start : start + len(block)] = scores
    return out_idx, out_scores


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(scores, idx, axis=1).astype(np.float32)
