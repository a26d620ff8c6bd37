"""Run the probe set through an embedder or reranker and measure it against the reference.

All numbers are computed on the vectors and scores users get (through :class:`Embedder` and
:class:`Reranker`), so the policy above the backend is checked too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from finesift.doctor.probes import PROBES, ProbeSet
from finesift.errors import FinesiftError

MRL_DIM = 32


@dataclass
class EmbeddingRun:
    """What one embedder produced: queries and documents (full-dim, L2-normalised rows); the short
    documents embedded alone and at the Matryoshka dimension (empty when not asked for)."""

    queries: np.ndarray
    documents: np.ndarray
    alone: np.ndarray
    mrl: np.ndarray
    tokens: int
    seconds: float


@dataclass
class RerankRun:
    """Scores per rerank case, in probe order."""

    scores: list[list[float]]
    pair_tokens: list[int]
    seconds: float

    @property
    def tokens(self) -> int:
        return sum(self.pair_tokens)


@dataclass
class Metrics:
    """One backend's numbers against the reference; ``None`` where not measured."""

    cos_min: float | None = None
    cos_mean: float | None = None
    max_delta: float | None = None
    agreement: float | None = None
    tokens_per_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def embed_probe(embedder: Any, probes: ProbeSet = PROBES, *, invariants: bool = True) -> EmbeddingRun:
    """Embed queries (each with its instruction) and documents in one batch; then, for the invariants,
    the short documents one at a time and at the Matryoshka dimension."""
    embedder.embed_documents(["warm-up"])  # lazy set-up (connections, kernels) stays out of tok/s
    started = time.perf_counter()
    queries = np.vstack([embedder.embed_queries([q.text], instruction=q.instruction) for q in probes.queries])
    batch = embedder.encode(list(probes.documents), input_type="document")
    seconds = time.perf_counter() - started
    short = [d for i, d in enumerate(probes.documents) if i != probes.long_index]
    if not invariants:
        empty = np.zeros((0, batch.vectors.shape[1]), dtype=np.float32)
        return EmbeddingRun(queries, batch.vectors, empty, empty, int(batch.total_tokens), seconds)
    alone = np.vstack([embedder.embed_documents([d]) for d in short])
    mrl = embedder.embed_documents(short, dim=min(MRL_DIM, int(embedder.dimension)))
    return EmbeddingRun(queries, batch.vectors, alone, mrl, int(batch.total_tokens), seconds)


def rerank_probe(reranker: Any, probes: ProbeSet = PROBES) -> RerankRun:
    """Score every rerank case of the probe set."""
    reranker.score("warm-up", ["warm-up"])  # lazy set-up stays out of tok/s
    started = time.perf_counter()
    scores: list[list[float]] = []
    tokens: list[int] = []
    for query, docs in probes.rerank:
        out = reranker.score_detailed(query.text, list(docs), instruction=query.instruction)
        scores.append([float(s) for s in out.scores])
        tokens.extend(out.tokens or [0] * len(docs))
    return RerankRun(scores, tokens, time.perf_counter() - started)


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b`` (NaN-safe: NaN rows give NaN)."""
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(num / den, dtype=np.float64)


def concordance(reference: Sequence[float], candidate: Sequence[float]) -> float:
    """Share of item pairs that both orderings rank the same way (1.0: identical ranking)."""
    pairs = agree = 0
    for i in range(len(reference)):
        for j in range(i + 1, len(reference)):
            ref = reference[i] - reference[j]
            if abs(ref) < 1e-6:
                continue
            pairs += 1
            agree += ref * (candidate[i] - candidate[j]) > 0
    return agree / pairs if pairs else 1.0


def embedding_metrics(reference: EmbeddingRun, candidate: EmbeddingRun, *, ref_tokens: int) -> Metrics:
    """Cosines per probe text, ranking agreement (documents per query by dot product), speed."""
    cos_q = row_cosines(reference.queries, candidate.queries)
    cos_d = row_cosines(reference.documents, candidate.documents)
    cosines = np.concatenate([cos_q, cos_d])
    agreement = float(
        np.mean(
            [
                concordance(reference.documents @ rq, candidate.documents @ cq)
                for rq, cq in zip(reference.queries, candidate.queries, strict=True)
            ]
        )
    )
    details = {
        "query_cosines": [round(float(c), 6) for c in cos_q],
        "document_cosines": [round(float(c), 6) for c in cos_d],
        "alone_vs_batch_min_cosine": _min(row_cosines(candidate.alone, _short(candidate))),
        "alone_min_cosine": _min(row_cosines(_short(reference), candidate.alone)),
        "mrl_max_norm_error": float(np.max(np.abs(np.linalg.norm(candidate.mrl, axis=1) - 1.0))),
        "mrl_min_cosine": _min(row_cosines(reference.mrl, candidate.mrl)),
    }
    return Metrics(
        _min(cosines), _mean(cosines), None, agreement, _rate(ref_tokens, candidate.seconds), details
    )


def rerank_metrics(reference: RerankRun, candidate: RerankRun, *, ref_tokens: int) -> Metrics:
    """Largest |Δscore|, ranking agreement per query, speed."""
    ref = np.array([s for case in reference.scores for s in case], dtype=np.float64)
    cand = np.array([s for case in candidate.scores for s in case], dtype=np.float64)
    delta = np.abs(ref - cand)
    agreement = float(
        np.mean([concordance(r, c) for r, c in zip(reference.scores, candidate.scores, strict=True)])
    )
    details = {
        "reference_scores": [round(float(s), 6) for s in ref],
        "scores": [round(float(s), 6) for s in cand],
    }
    max_delta = float(np.max(delta)) if not np.isnan(delta).any() else math.nan
    return Metrics(None, None, max_delta, agreement, _rate(ref_tokens, candidate.seconds), details)


def _short(run: EmbeddingRun) -> np.ndarray:
    """The batch rows of the documents that were also embedded alone (all but the long text, last)."""
    return run.documents[: len(run.alone)]


def _min(values: np.ndarray) -> float:
    return math.nan if np.isnan(values).any() else float(np.min(values))


def _mean(values: np.ndarray) -> float:
    return math.nan if np.isnan(values).any() else float(np.mean(values))


def _rate(tokens: int, seconds: float) -> float | None:
    return tokens / seconds if seconds > 0 and tokens > 0 else None


def attempt(func: Any, *args: Any) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, one-line error)`` when the backend fails in a finesift way."""
    try:
        return func(*args), None
    except FinesiftError as exc:
        return None, " ".join(str(exc).split())
