"""The retrieval pipeline: dense top-K and BM25 top-K → weighted RRF → rerank the top-N → hits.

Scores of the returned hits depend on the last stage that ran: the reranker's probability in [0, 1]
when reranking, otherwise the RRF score (hybrid), the cosine similarity (dense) or the BM25 score
(bm25). ``threshold`` applies to that score.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from finesift.rerank.base import Reranker
from finesift.retrieval.fusion import rrf
from finesift.retrieval.options import SearchOptions, validate_options
from finesift.retrieval.request import MAX_QUERY_CHARS, SearchRequest, validate_query
from finesift.store.base import ScoredChunk, StoreSnapshot
from finesift.types import Chunk, Hit

__all__ = ["MAX_QUERY_CHARS", "RetrievalPipeline", "SearchOptions", "validate_query"]


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

    def recall(self, snapshot: StoreSnapshot, request: SearchRequest) -> list[ScoredChunk]:
        """Candidates before reranking, best first, scored by the mode's own score (RRF for hybrid)."""
        dense: list[ScoredChunk] = []
        lexical: list[ScoredChunk] = []
        options = request.options
        k, filters = options.candidates, options.filters
        if options.mode in ("dense", "hybrid"):
            dense = snapshot.search(self._embed_query(request.query), k=k, filters=filters)
        if options.mode in ("bm25", "hybrid"):
            lexical = snapshot.lexical_search(list(request.terms), k=k, filters=filters)
        if options.mode != "hybrid":
            return dense or lexical
        by_id = {c.chunk.chunk_id: c.chunk for c in [*dense, *lexical]}
        fused = rrf(
            [[c.chunk.chunk_id for c in dense], [c.chunk.chunk_id for c in lexical]],
            weights=[options.dense_weight, options.bm25_weight],
            k=options.rrf_k,
        )
        return [ScoredChunk(by_id[str(cid)], score) for cid, score in fused]

    def search(self, snapshot: StoreSnapshot, query: str, options: SearchOptions) -> list[Hit]:
        """The best ``top_k`` hits for ``query``, best first."""
        return self.run(snapshot, SearchRequest.of(query, options))

    def run(self, snapshot: StoreSnapshot, request: SearchRequest) -> list[Hit]:
        """The best ``top_k`` hits for a built request (:func:`~finesift.retrieval.request.build_search`)."""
        options = validate_options(request.options)
        candidates = self.recall(snapshot, request)
        reranker = self._reranker() if options.rerank and candidates else None
        if reranker is not None:
            head = candidates[: max(options.rerank_top_n, options.top_k)]
            texts = [c.chunk.text for c in head]
            ranked = reranker.rerank(request.query, texts, instruction=self._instruction)
            candidates = [ScoredChunk(head[r.index].chunk, r.score) for r in ranked]
        hits = [_hit(c.chunk, c.score) for c in candidates[: options.top_k]]
        if options.threshold is not None:
            hits = [h for h in hits if h.score >= options.threshold]
        return hits
