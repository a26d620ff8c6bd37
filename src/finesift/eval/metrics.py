"""Retrieval metrics with trec_eval's definitions (as in pytrec-eval-terrier, BEIR and MTEB).

- A document is relevant when its judgement is >= 1; judgements <= 0 count as not relevant.
- A run is ranked the way trec_eval ranks it: score descending, ties by document id descending.
- ``ndcg@k`` (``ndcg_cut.k``): DCG with gain = judgement (linear, as trec_eval's default) and
  discount ``log2(rank + 1)``, over the ideal DCG of all judged documents, both cut at k.
  For binary judgements this equals the ``2^rel - 1`` gain.
- ``recall@k`` (``recall.k``): relevant documents in the top k over all relevant documents.
- ``map@k`` (``map_cut.k``): sum of precision at each relevant rank <= k, over all relevant documents.
- ``mrr@k``: 1 / rank of the first relevant document within the top k, else 0 (BEIR's MRR@k;
  trec_eval's ``recip_rank`` on the run cut at k).
- ``precision@k`` (``P.k``): relevant documents in the top k over k.

Scores are averaged over the queries that have at least one relevant judgement; a query with no
results (or missing from the run) scores 0 rather than being skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from finesift.errors import InvalidRequest

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "recall@100", "mrr@10", "map@100")
Judged = Mapping[str, int]
MetricFn = Callable[[Sequence[str], Judged, int], float]


def trec_order(scores: Mapping[str, float]) -> list[str]:
    """Document ids best first: score descending, ties by id descending (trec_eval's order)."""
    by_id = sorted(scores, reverse=True)
    return sorted(by_id, key=lambda d: -scores[d])


def _relevant(judged: Judged) -> int:
    return sum(1 for rel in judged.values() if rel > 0)


def ndcg(ranked: Sequence[str], judged: Judged, k: int) -> float:
    """nDCG@k with linear gains and trec_eval's discount ``1 / log2(rank + 1)``."""
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if judged.get(d, 0) > 0)
    ideal = sorted((rel for rel in judged.values() if rel > 0), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranked: Sequence[str], judged: Judged, k: int) -> float:
    total = _relevant(judged)
    return sum(1 for d in ranked[:k] if judged.get(d, 0) > 0) / total if total else 0.0


def precision(ranked: Sequence[str], judged: Judged, k: int) -> float:
    return sum(1 for d in ranked[:k] if judged.get(d, 0) > 0) / k


def average_precision(ranked: Sequence[str], judged: Judged, k: int) -> float:
    total = _relevant(judged)
    found, summed = 0, 0.0
    for i, d in enumerate(ranked[:k]):
        if judged.get(d, 0) > 0:
            found += 1
            summed += found / (i + 1)
    return summed / total if total else 0.0


def reciprocal_rank(ranked: Sequence[str], judged: Judged, k: int) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if judged.get(d, 0) > 0), 0.0)


METRIC_FUNCTIONS: dict[str, MetricFn] = {
    "ndcg": ndcg,
    "recall": recall,
    "map": average_precision,
    "mrr": reciprocal_rank,
    "precision": precision,
}


def parse_metric(name: str) -> tuple[MetricFn, int]:
    """``"ndcg@10"`` -> (function, 10); unknown names list the valid ones."""
    base, _, cut = name.lower().partition("@")
    if base not in METRIC_FUNCTIONS or not cut.isdigit() or int(cut) < 1:
        raise InvalidRequest(
            f"unknown metric {name!r}; use NAME@K with NAME one of {', '.join(METRIC_FUNCTIONS)}"
        )
    return METRIC_FUNCTIONS[base], int(cut)


@dataclass(frozen=True)
class Scores:
    """Mean metrics over ``queries`` evaluated queries; ``per_query[metric][qid]``; ``dropped`` unjudged."""

    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    queries: int
    dropped: int


def evaluate(
    qrels: Mapping[str, Judged],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Scores:
    """Score ``run`` (query -> document -> score) against ``qrels`` (query -> document -> judgement)."""
    parsed = {name: parse_metric(name) for name in metrics}
    judged_queries = [q for q, judged in qrels.items() if _relevant(judged) > 0]
    per_query: dict[str, dict[str, float]] = {name: {} for name in metrics}
    for qid in judged_queries:
        ranked = trec_order(run.get(qid, {}))
        for name, (fn, k) in parsed.items():
            per_query[name][qid] = fn(ranked, qrels[qid], k)
    n = len(judged_queries)
    means = {name: (sum(values.values()) / n if n else 0.0) for name, values in per_query.items()}
    return Scores(means, per_query, n, len(qrels) - n)
