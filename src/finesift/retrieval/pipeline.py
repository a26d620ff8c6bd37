"""The retrieval pipeline: dense top-K and BM25 top-K → weighted RRF → rerank the top-N → hits.

Scores of the returned hits depend on the last stage that ran: the reranker's probability in [0, 1]
when reranking, otherwise the RRF score (hybrid), the cosine similarity (dense) or the BM25 score
(bm25). ``threshold`` applies to that score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from finesift.errors import InvalidRequest
from finesift.lexical import tokenize
from finesift.rerank.base import Reranker
from finesift.retrieval.fusion import RRF_K, rrf
from finesift.store.base import Filters, ScoredChunk, StoreSnapshot
from finesift.types import Chunk, Hit

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")
MAX_TOP_K = 1000
MAX_QUERY_CHARS = 8192


@dataclass(frozen=True)
class SearchOptions:
    """How one search runs. ``candidates`` is K for each recall list; ``rerank_top_n`` is N."""

    top_k: int = 5
    mode: Mode = "hybrid"
    candidates: int = 50
    rerank: bool = True
    rerank_top_n: int = 20
    threshold: float | None = None
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    rrf_k: int = RRF_K
    filters: Filters = field(default_factory=Filters)


def validate_options(options: SearchOptions) -> SearchOptions:
    """Refuse out-of-range options with a message naming the valid range."""
    if options.mode not in MODES:
        raise InvalidRequest(f"unknown search mode {options.mode!r}; choose one of {', '.join(MODES)}")
    for name in ("top_k", "candidates", "rerank_top_n"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
            raise InvalidRequest(f"{name} must be an integer in 1..{MAX_TOP_K}, not {value!r}")
    weights = (options.dense_weight, options.lexical_weight)
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise InvalidRequest("RRF weights must be finite, >= 0, and not both 0")
    if options.rrf_k < 0:
        raise InvalidRequest(f"rrf_k must be >= 0, not {options.rrf_k}")
    if options.threshold is not None and not np.isfinite(options.threshold):
        raise InvalidRequest("threshold must be a finite number")
    return options


def validate_query(query: object) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequest("the query is empty; pass the text to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidRequest(f"the query is too long ({len(query)} characters; at most {MAX_QUERY_CHARS})")
    return query.strip()


def _hit(chunk: Chunk, score: float) -> Hit:
    return Hit(chunk.doc_id, chunk.source, chunk.text, float(score), chunk.start, chunk.end, chunk.page)


class RetrievalPipeline:
    """Recall, fusion and reranking over a store snapshot; models are called only when a mode needs them.

    ``instruction`` is the task the query was embedded for; the reranker judges with the same one
    (``None``: the reranker's own default).
    """

    def __init__(
        self,
        *,
        embed_query: Callable[[str], np.ndarray],
        reranker: Callable[[], Reranker | None],
        instruction: str | None = None,
    ) -> None:
        self._embed_query = embed_query
        self._reranker = reranker
        self._instruction = instruction

    def recall(self, snapshot: StoreSnapshot, query: str, options: SearchOptions) -> list[ScoredChunk]:
        """Candidates before reranking, best first, scored by the mode's own score (RRF for hybrid)."""
        dense: list[ScoredChunk] = []
        lexical: list[ScoredChunk] = []
        k, filters = options.candidates, options.filters
        if options.mode in ("dense", "hybrid"):
            dense = snapshot.search(self._embed_query(query), k=k, filters=filters)
        if options.mode in ("bm25", "hybrid"):
            lexical = snapshot.lexical_search(tokenize(query), k=k, filters=filters)
        if options.mode != "hybrid":
            return dense or lexical
        by_id = {c.chunk.chunk_id: c.chunk for c in [*dense, *lexical]}
        fused = rrf(
            [[c.chunk.chunk_id for c in dense], [c.chunk.chunk_id for c in lexical]],
            weights=[options.dense_weight, options.lexical_weight],
            k=options.rrf_k,
        )
        return [ScoredChunk(by_id[str(cid)], score) for cid, score in fused]

    def search(self, snapshot: StoreSnapshot, query: str, options: SearchOptions) -> list[Hit]:
        """The best ``top_k`` hits for ``query``, best first."""
        query = validate_query(query)
        options = validate_options(options)
        candidates = self.recall(snapshot, query, options)
        reranker = self._reranker() if options.rerank and candidates else None
        if reranker is not None:
            head = candidates[: max(options.rerank_top_n, options.top_k)]
            ranked = reranker.rerank(query, [c.chunk.text for c in head], instruction=self._instruction)
            candidates = [ScoredChunk(head[r.index].chunk, r.score) for r in ranked]
        hits = [_hit(c.chunk, c.score) for c in candidates[: options.top_k]]
        if options.threshold is not None:
            hits = [h for h in hits if h.score >= options.threshold]
        return hits
