"""Negatives for reranker SFT: the data's own, topped up from the corpus by an embedder or BM25.

For each query the corpus is ranked (the embedder with the query formatted as at inference, or
BM25 when no embedder is given); the best-ranked texts that are not a positive of that query fill
the remaining slots. When the ranking runs dry (BM25 scores only texts sharing a term), seeded
random corpus texts complete the K, so every pair gets K negatives while the corpus has them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from finesift.embedding.embedder import Embedder
from finesift.train.data import TrainData


def _rankings(
    queries: Sequence[str], corpus: Sequence[str], embedder: Embedder | None, *, progress: bool
) -> list[list[int]]:
    """Corpus indices per query, best first."""
    if embedder is not None:
        from finesift.train.negatives import embed_in_chunks
        from finesift.train.progress import Progress

        shown = Progress(len(corpus) + len(queries), desc="mining negatives", unit="text", enabled=progress)
        with shown:
            docs = embed_in_chunks(embedder.embed_documents, list(corpus), shown)
            scores = embed_in_chunks(embedder.embed_queries, list(queries), shown) @ docs.T
        return [np.argsort(-row, kind="stable").tolist() for row in scores]
    from finesift.lexical import BM25Index

    index = BM25Index(list(range(len(corpus))), list(corpus))
    ranked = []
    for query in queries:
        scores = index.scores(query)
        ranked.append([int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0])
    return ranked


def mine_negatives(
    data: TrainData, k: int, *, embedder: Embedder | None = None, seed: int = 0, progress: bool = False
) -> list[tuple[str, ...]]:
    """K negatives per pair of ``data`` (in pair order); fewer only when the corpus runs out."""
    if k <= 0:
        return [() for _ in data.pairs]
    positives: dict[str, set[str]] = {}
    for pair in data.pairs:
        positives.setdefault(pair.query, set()).add(pair.positive)
    corpus = list(data.corpus)
    queries = sorted({p.query for p in data.pairs if len(p.negatives) < k})
    ranked = (
        dict(zip(queries, _rankings(queries, corpus, embedder, progress=progress), strict=True))
        if queries
        else {}
    )
    rng = random.Random(seed)
    result = []
    for pair in data.pairs:
        chosen = list(dict.fromkeys(n for n in pair.negatives if n not in positives[pair.query]))[:k]
        if len(chosen) < k:
            skip = positives[pair.query] | set(chosen)
            order = ranked[pair.query] + rng.sample(range(len(corpus)), len(corpus))
            for i in order:
                if len(chosen) == k:
                    break
                if corpus[i] not in skip:
                    chosen.append(corpus[i])
                    skip.add(corpus[i])
        result.append(tuple(chosen))
    return result
