"""Check built embedders and rerankers against a reference: rows with numbers and diagnoses.

The reference is the model cards' code (:mod:`finesift.doctor.model_card`); a finesift embedder or
reranker is accepted too (the fallback for checkpoints no model card describes).

This layer takes ready objects, so tests inject faulty backends and the server checks the models
it already loaded; :mod:`finesift.doctor.run` builds the objects from settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from finesift.doctor import faults
from finesift.doctor.compare import (
    EmbeddingRun,
    Metrics,
    attempt,
    embed_probe,
    embedding_metrics,
    rerank_metrics,
    rerank_probe,
    row_cosines,
)
from finesift.doctor.diagnose import (
    EMBEDDING_HYPOTHESES,
    Thresholds,
    diagnose_embedding,
    diagnose_rerank,
    embedding_failed,
    rerank_failed,
)
from finesift.doctor.model_card import CardEmbedder, CardReranker
from finesift.doctor.probes import PROBES, ProbeSet
from finesift.doctor.report import Row
from finesift.embedding.embedder import Embedder
from finesift.rerank.base import Reranker

#: A candidate is a built object, or the reason it could not be built: ("skip" | "fail", message).
Candidate = Any
LONG_PAIR_TOKENS = 512


class EmbeddingChecker:
    """Runs the probe through a reference embedder once, then compares candidates with it."""

    def __init__(
        self, reference: CardEmbedder | Embedder, thresholds: Thresholds, probes: ProbeSet = PROBES
    ) -> None:
        self.reference = reference
        self.thresholds = thresholds
        self.probes = probes
        self.run = embed_probe(reference, probes)
        self._hypotheses: dict[str, EmbeddingRun] | None = None

    def check(self, name: str, candidate: Candidate) -> Row:
        if isinstance(candidate, tuple):
            return Row(
                name,
                "embedding",
                candidate[0],
                message=candidate[1],
                diagnosis="error" if candidate[0] == "fail" else None,
            )
        run, error = attempt(embed_probe, candidate, self.probes)
        if error is not None:
            code = "nan_vectors" if "non-finite" in error or "all-zero" in error else "error"
            return Row(name, "embedding", "fail", diagnosis=code, message=error)
        metrics = embedding_metrics(self.run, run, ref_tokens=self.run.tokens)
        if not embedding_failed(metrics, self.thresholds):
            return Row(name, "embedding", "ok", metrics)
        code = diagnose_embedding(
            metrics, self.thresholds, long_index=self.probes.long_index, hypotheses=self._match(run)
        )
        return Row(name, "embedding", "fail", metrics, diagnosis=code)

    def _match(self, run: EmbeddingRun) -> dict[str, float]:
        """Mean cosine of ``run`` with each replayed bug of the reference model."""
        out = {}
        for name, hyp in self.hypotheses().items():
            cos = np.concatenate(
                [row_cosines(hyp.queries, run.queries), row_cosines(hyp.documents, run.documents)]
            )
            out[name] = float(np.mean(cos)) if not np.isnan(cos).any() else math.nan
        return {k: v for k, v in out.items() if not math.isnan(v)}

    def hypotheses(self) -> dict[str, EmbeddingRun]:
        if self._hypotheses is None:
            backend = self.reference.backend
            runs = {}
            if hasattr(backend, "tokenize") and hasattr(backend, "_forward"):
                for name in EMBEDDING_HYPOTHESES:
                    replay = Embedder(
                        faults.EMBEDDING_FAULTS[name](backend), instruction=self.reference.default_instruction
                    )
                    runs[name] = embed_probe(replay, self.probes, invariants=False)
            self._hypotheses = runs
        return self._hypotheses


class RerankChecker:
    """Runs the rerank probe through a reference reranker once, then compares candidates with it."""

    def __init__(
        self, reference: CardReranker | Reranker, thresholds: Thresholds, probes: ProbeSet = PROBES
    ) -> None:
        self.reference = reference
        self.thresholds = thresholds
        self.probes = probes
        self.run = rerank_probe(reference, probes)
        self.long_pairs = [n > LONG_PAIR_TOKENS for n in self.run.pair_tokens]
        self._hypotheses: dict[str, list[float]] | None = None

    def check(self, name: str, candidate: Candidate) -> Row:
        if isinstance(candidate, tuple):
            return Row(
                name,
                "reranker",
                candidate[0],
                message=candidate[1],
                diagnosis="error" if candidate[0] == "fail" else None,
            )
        run, error = attempt(rerank_probe, candidate, self.probes)
        if error is not None:
            code = "nan_scores" if "non-finite" in error else "error"
            return Row(name, "reranker", "fail", diagnosis=code, message=error)
        metrics = rerank_metrics(self.run, run, ref_tokens=self.run.tokens)
        if not rerank_failed(metrics, self.thresholds):
            return Row(name, "reranker", "ok", metrics)
        code = diagnose_rerank(
            metrics, self.thresholds, long_pairs=self.long_pairs, hypotheses=self.hypotheses()
        )
        return Row(name, "reranker", "fail", metrics, diagnosis=code)

    def hypotheses(self) -> dict[str, list[float]]:
        if self._hypotheses is None:
            backend = self.reference.backend
            self._hypotheses = {}
            if hasattr(backend, "build") and hasattr(backend, "score_ids"):
                replay = Reranker(
                    faults.TemplateDriftReranker(backend), instruction=self.reference.default_instruction
                )
                self._hypotheses["template_drift"] = [
                    s for case in rerank_probe(replay, self.probes).scores for s in case
                ]
        return self._hypotheses


def sanity_embedding(
    name: str, candidate: Embedder, thresholds: Thresholds, probes: ProbeSet = PROBES
) -> Row:
    """Without a reference: finite vectors, batch == alone, unit-norm Matryoshka slices."""
    run, error = attempt(embed_probe, candidate, probes)
    if error is not None:
        code = "nan_vectors" if "non-finite" in error or "all-zero" in error else "error"
        return Row(name, "embedding", "fail", diagnosis=code, message=error)
    alone = row_cosines(run.alone, run.documents[: len(run.alone)])
    norm_error = float(np.max(np.abs(np.linalg.norm(run.mrl, axis=1) - 1.0)))
    metrics = Metrics(
        details={"alone_vs_batch_min_cosine": float(np.min(alone)), "mrl_max_norm_error": norm_error}
    )
    metrics.tokens_per_s = run.tokens / run.seconds if run.seconds > 0 and run.tokens else None
    if norm_error > thresholds.norm_tolerance:
        return Row(name, "embedding", "fail", metrics, diagnosis="normalise_before_slice")
    if float(np.min(alone)) < thresholds.min_cosine:
        return Row(name, "embedding", "fail", metrics, diagnosis="right_padding")
    return Row(name, "embedding", "ok", metrics, message="no reference: sanity checks only")


def sanity_rerank(name: str, candidate: Reranker, probes: ProbeSet = PROBES) -> Row:
    """Without a reference: finite scores in [0, 1] that are not all the same."""
    run, error = attempt(rerank_probe, candidate, probes)
    if error is not None:
        return Row(
            name,
            "reranker",
            "fail",
            diagnosis="nan_scores" if "non-finite" in error else "error",
            message=error,
        )
    scores = np.array([s for case in run.scores for s in case], dtype=np.float64)
    metrics = Metrics(tokens_per_s=run.tokens / run.seconds if run.seconds > 0 and run.tokens else None)
    if not np.isfinite(scores).all():
        return Row(name, "reranker", "fail", metrics, diagnosis="nan_scores")
    if np.all(np.abs(scores - 0.5) < 0.02):
        return Row(name, "reranker", "fail", metrics, diagnosis="constant_half")
    if np.max(scores) < 0.02:
        return Row(name, "reranker", "fail", metrics, diagnosis="all_zero")
    return Row(name, "reranker", "ok", metrics, message="no reference: sanity checks only")


def check_all(checker: EmbeddingChecker | RerankChecker, candidates: Mapping[str, Candidate]) -> list[Row]:
    """One row per candidate, in the given order."""
    return [checker.check(name, candidate) for name, candidate in candidates.items()]
