"""Held-out measurement of a training run: a passage-disjoint dev split, scored before and after.

The dev split is given (``--dev PATH``: a BEIR folder, whose ``--dev-split`` qrels are read, or a JSONL
of pairs) or carved out of the training data (``--dev-fraction F``). A carved split is **by passage**:
the distinct positive texts are shuffled with the run's seed and the first ``ceil(F · n)`` of them
(at least one, never all) become dev passages; every pair whose positive is a dev passage goes to dev,
and the training side loses those pairs, those passages from its corpus (so they are never mined as
negatives) and from any pair's given negatives. No dev passage is trained on, in any role.

The metric is nDCG@10 (trec_eval's, :func:`finesift.eval.metrics.ndcg`), binary judgements:

* **embedder**: every dev query ranks the whole corpus (the dev data's; train passages included as
  distractors) by cosine similarity, formatted exactly as at inference;
* **reranker**: every dev query reorders its positives together with ``RERANK_NEGATIVES`` hard
  negatives (the data's own, topped up by BM25 over the corpus, seeded), so the score measures the
  reranker alone, not a first stage.

The model is scored as given before training and as saved after; a given dev split that shares
passages with the training pairs is scored too, with the overlap counted in the report.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from finesift.errors import InvalidRequest
from finesift.train.data import TrainData, fingerprint, load_pairs

K = 10
METRIC = f"ndcg@{K}"
RERANK_NEGATIVES = 9


@dataclass(frozen=True)
class DevSpec:
    """Where the dev split comes from: a path (and its qrels split) or a fraction of the passages."""

    path: Path | None = None
    split: str = "dev"
    fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.path is not None and self.fraction:
            raise InvalidRequest("pass --dev or --dev-fraction, not both")
        if not 0 <= self.fraction < 1 or math.isnan(self.fraction):
            raise InvalidRequest(f"--dev-fraction must lie in [0, 1), not {self.fraction}")

    @property
    def enabled(self) -> bool:
        return self.path is not None or self.fraction > 0


def split_by_passage(data: TrainData, fraction: float, seed: int) -> tuple[TrainData, TrainData]:
    """(train part, dev part): passage-disjoint, the dev passages drawn with ``seed`` (see the module)."""
    passages = sorted({pair.positive for pair in data.pairs})
    if len(passages) < 2:
        raise InvalidRequest("--dev-fraction needs at least two distinct positive passages in the data")
    random.Random(seed).shuffle(passages)
    held = set(passages[: min(len(passages) - 1, max(1, math.ceil(fraction * len(passages))))])
    train_pairs = [
        replace(pair, negatives=tuple(n for n in pair.negatives if n not in held))
        for pair in data.pairs
        if pair.positive not in held
    ]
    dev_pairs = [pair for pair in data.pairs if pair.positive in held]
    train_corpus = [text for text in data.corpus if text not in held]
    tag = f"{data.source} (dev-fraction {fraction}, seed {seed})"
    train = TrainData(
        tuple(train_pairs), tuple(train_corpus), fingerprint(train_pairs, train_corpus),
        f"{tag}: train part", data.split, data.skipped,
    )  # fmt: skip
    dev = TrainData(
        tuple(dev_pairs), data.corpus, fingerprint(dev_pairs, data.corpus), f"{tag}: dev part", data.split
    )
    return train, dev


def prepare(data: TrainData, spec: DevSpec, seed: int) -> tuple[TrainData, TrainData | None]:
    """(what to train on, the dev split or None): applies ``spec`` to loaded training data."""
    if spec.path is not None:
        return data, load_pairs(spec.path, spec.split, skip_empty=True)
    if spec.fraction > 0:
        return split_by_passage(data, spec.fraction, seed)
    return data, None


def overlap(train: TrainData, dev: TrainData) -> int:
    """Dev positive passages that are also training positives (0 for a carved split)."""
    return len({p.positive for p in dev.pairs} & {p.positive for p in train.pairs})


def qrels_of(dev: TrainData) -> tuple[list[str], dict[str, dict[str, int]]]:
    """(distinct dev queries in first-seen order, query -> {corpus index as str: 1} for its positives)."""
    index = {text: str(i) for i, text in enumerate(dev.corpus)}
    qrels: dict[str, dict[str, int]] = {}
    for pair in dev.pairs:
        judged = qrels.setdefault(pair.query, {})
        if pair.positive in index:
            judged[index[pair.positive]] = 1
    return list(qrels), qrels


def mean_ndcg(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    from finesift.eval.metrics import ndcg

    judged = [q for q, rel in qrels.items() if rel]
    if not judged:
        return 0.0
    return round(sum(ndcg(ranked.get(q, []), qrels[q], K) for q in judged) / len(judged), 6)


def embedder_score(encoder: Any, dev: TrainData) -> float:
    """nDCG@10 of the dev queries ranking the dev corpus with ``encoder`` (a TrainableEncoder)."""
    import numpy as np

    from finesift.train.negatives import embed_in_chunks
    from finesift.train.progress import Progress

    queries, qrels = qrels_of(dev)
    shown = Progress(len(queries) + len(dev.corpus), desc="dev", unit="text", enabled=False)
    was_training = encoder.modules.training
    encoder.modules.eval()
    try:
        docs = embed_in_chunks(encoder.embedder.embed_documents, list(dev.corpus), shown)
        vectors = embed_in_chunks(encoder.embedder.embed_queries, queries, shown)
    finally:
        encoder.modules.train(was_training)
    top = np.argsort(-(vectors @ docs.T), axis=1, kind="stable")[:, :K]
    return mean_ndcg({q: [str(i) for i in top[n]] for n, q in enumerate(queries)}, qrels)


def rerank_candidates(dev: TrainData, seed: int) -> dict[str, list[str]]:
    """Per dev query: its positives and the hard negatives of its pairs (data's first, then BM25)."""
    from finesift.train.rerank_negatives import mine_negatives

    negatives = mine_negatives(dev, RERANK_NEGATIVES, seed=seed)
    candidates: dict[str, list[str]] = {}
    for pair, negs in zip(dev.pairs, negatives, strict=True):
        candidates.setdefault(pair.query, []).extend([pair.positive, *negs])
    return {q: list(dict.fromkeys(texts)) for q, texts in candidates.items()}


def reranker_score(reranker: Any, dev: TrainData, candidates: dict[str, list[str]]) -> float:
    """nDCG@10 of ``reranker`` (a :class:`finesift.rerank.base.Reranker`) reordering ``candidates``."""
    _, qrels = qrels_of(dev)
    index = {text: str(i) for i, text in enumerate(dev.corpus)}
    ranked: dict[str, list[str]] = {}
    for query, texts in candidates.items():
        scores = reranker.score(query, texts)
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        ranked[query] = [index.get(texts[i], f"x{i}") for i in order]
    return mean_ndcg(ranked, qrels)


def report(before: float, after: float, dev: TrainData, *, source: str, overlapping: int) -> dict[str, Any]:
    """The ``dev`` section of a TrainResult and of the lineage."""
    return {
        "metric": METRIC, "before": before, "after": after, "gain": round(after - before, 6),
        "queries": len({p.query for p in dev.pairs}), "passages": len({p.positive for p in dev.pairs}),
        "source": source, "overlapping_passages": overlapping,
    }  # fmt: skip
