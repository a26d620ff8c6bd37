"""Run one or several evaluation configurations over a BEIR data set.

Modes: ``dense`` (exact cosine search), ``bm25`` (:class:`finesift.lexical.BM25Index`),
``hybrid`` (RRF of the dense and BM25 top-100), ``rerank`` (dense top-``rerank_top``, reranked: the
published protocol). Every run returns the top 100 per query in the system's own order.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from finesift.embedding.embedder import Embedder, slice_and_normalise, validate_dim
from finesift.embedding.factory import build_embedder
from finesift.embedding.instructions import resolve_instruction
from finesift.embedding.registry import choose_backend
from finesift.errors import NotFound
from finesift.eval.cache import EmbeddingCache
from finesift.eval.config import RETRIEVE_DEPTH, EvalConfig
from finesift.eval.datasets import BeirDataset
from finesift.eval.encode import EncodeRequest, encode_cached
from finesift.eval.metrics import DEFAULT_METRICS, evaluate
from finesift.eval.search import exact_search
from finesift.lexical import BM25Index
from finesift.rerank.base import Reranker
from finesift.rerank.factory import build_reranker
from finesift.retrieval.fusion import rrf
from finesift.settings import EmbeddingSettings, HubSettings, RerankSettings

Ranking = list[str]


@dataclass
class EvalResult:
    """Metrics and costs of one configuration on one data set."""

    config: EvalConfig
    data: str
    split: str
    metrics: dict[str, float]
    queries: int
    dropped_queries: int
    docs: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    index_bytes: int = 0
    docs_per_second: float | None = None
    corpus_cached: bool = False
    truncated_docs: int = 0

    @property
    def query_ms(self) -> float:
        """Per-query time: query encoding, search and reranking (milliseconds)."""
        parts = ("encode_queries", "index", "search", "rerank")
        return 1000.0 * sum(self.timings.get(p, 0.0) for p in parts) / max(self.queries, 1)

    def to_json(self) -> dict[str, Any]:
        rounded = {name: round(value, 6) for name, value in self.metrics.items()}
        return {
            **rounded,
            "queries": self.queries,
            "docs": self.docs,
            "mode": self.config.mode,
            "seconds": round(self.seconds, 3),
            "data": self.data,
            "split": self.split,
            "dropped_queries": self.dropped_queries,
            **self.config.describe(),
            "label": self.config.label or None,
            "index_mb": round(self.index_bytes / 2**20, 3),
            "docs_per_second": None if self.docs_per_second is None else round(self.docs_per_second, 2),
            "query_ms": round(self.query_ms, 3),
            "corpus_cached": self.corpus_cached,
            "truncated_docs": self.truncated_docs,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


class Evaluator:
    """Runs configurations; loaded models, BM25 indexes and corpus vectors are shared between runs."""

    def __init__(
        self,
        *,
        hub: HubSettings | None = None,
        cache: EmbeddingCache | None = None,
        encode_chunk: int = 256,
        progress: bool = False,
        metrics: Sequence[str] = DEFAULT_METRICS,
    ) -> None:
        self.hub = hub or HubSettings()
        self.cache = cache or EmbeddingCache(None)
        self.encode_chunk = encode_chunk
        self.progress = progress
        self.metrics = tuple(metrics)
        self._embedders: dict[str, Embedder] = {}
        self._rerankers: dict[str, Reranker] = {}
        self._bm25: dict[str, tuple[BM25Index, float]] = {}

    def embedder(self, settings: EmbeddingSettings) -> Embedder:
        key = settings.model_dump_json()
        if key not in self._embedders:
            self._embedders[key] = build_embedder(settings, self.hub)
        return self._embedders[key]

    def reranker(self, settings: RerankSettings) -> Reranker:
        key = settings.model_dump_json()
        if key not in self._rerankers:
            self._rerankers[key] = build_reranker(settings, self.hub)
        return self._rerankers[key]

    def run(self, data: BeirDataset, config: EvalConfig) -> EvalResult:
        """Retrieve the top 100 for every query with ``config`` and score it."""
        start = time.perf_counter()
        run = _Run(self, data, config)
        rankings = run.rankings()
        scored = evaluate(data.qrels, {q: _rank_scores(r) for q, r in rankings.items()}, self.metrics)
        return EvalResult(
            config=config,
            data=data.name,
            split=data.split,
            metrics=scored.means,
            queries=scored.queries,
            dropped_queries=data.dropped_queries,
            docs=len(data.doc_ids),
            seconds=time.perf_counter() - start,
            timings=run.timings,
            index_bytes=run.index_bytes,
            docs_per_second=run.docs_per_second,
            corpus_cached=run.corpus_cached,
            truncated_docs=run.truncated_docs,
        )

    def vectors(self, data: BeirDataset, config: EvalConfig) -> tuple[np.ndarray, np.ndarray, float]:
        """Full-dimension query and document vectors of ``config``'s embedder, and the corpus encode
        time in seconds (of the original run when cached): the same vectors :meth:`run` searches."""
        run = _Run(self, data, config)
        embedder = run._load_embedder()
        docs = run._corpus_vectors(embedder)
        return run._query_vectors(embedder), docs, run.corpus_seconds

    def run_all(self, data: BeirDataset, configs: Sequence[EvalConfig]) -> list[EvalResult]:
        return [self.run(data, config) for config in configs]


def _rank_scores(ranking: Ranking) -> dict[str, float]:
    """Scores that make trec_eval keep the system's own order (no tie reordering)."""
    return {doc: float(len(ranking) - i) for i, doc in enumerate(ranking)}


class _Run:
    """The state of one run: timings, index size, and the rankings of each stage."""

    def __init__(self, owner: Evaluator, data: BeirDataset, config: EvalConfig) -> None:
        self.owner, self.data, self.config = owner, data, config
        self.qids = list(data.queries)
        self.timings: dict[str, float] = {}
        self.index_bytes = 0
        self.docs_per_second: float | None = None
        self.corpus_cached = False
        self.corpus_seconds = 0.0
        self.truncated_docs = 0

    def rankings(self) -> dict[str, Ranking]:
        mode = self.config.mode
        if mode == "bm25":
            return self.bm25()
        if mode == "hybrid":
            dense, lexical = self.dense(RETRIEVE_DEPTH), self.bm25()
            began = time.perf_counter()
            fused = {q: [str(d) for d, _ in rrf([dense[q], lexical[q]])][:RETRIEVE_DEPTH] for q in self.qids}
            self._add("search", time.perf_counter() - began)
            return fused
        dense = self.dense(max(RETRIEVE_DEPTH, self.config.rerank_top if mode == "rerank" else 0))
        return self.rerank(dense) if mode == "rerank" else dense

    def _add(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def dense(self, depth: int) -> dict[str, Ranking]:
        embedder = self._load_embedder()
        size = validate_dim(self.config.dim, embedder.dimension)
        docs = self._corpus_vectors(embedder)
        queries = self._query_vectors(embedder)
        began = time.perf_counter()
        doc_matrix = docs if size == docs.shape[1] else slice_and_normalise(docs, size)
        query_matrix = queries if size == queries.shape[1] else slice_and_normalise(queries, size)
        idx, _ = exact_search(query_matrix, doc_matrix, depth)
        self._add("search", time.perf_counter() - began)
        self.index_bytes += int(doc_matrix.nbytes)
        ids = self.data.doc_ids
        return {q: [ids[j] for j in row] for q, row in zip(self.qids, idx.tolist(), strict=True)}

    def _load_embedder(self) -> Embedder:
        began = time.perf_counter()
        try:
            embedder = self.owner.embedder(self.config.embedding)
        except NotFound as exc:
            if self.config.mode != "rerank":
                raise
            raise NotFound(
                f"--mode rerank reranks a first-stage dense retrieval, and its embedder "
                f"{self.config.embedding.model!r} could not be loaded: {exc} Pass a first-stage model "
                f"you have with --embedding-model (a local directory, a cached hub id, or all-MiniLM-L6-v2)"
            ) from exc
        self._add("load", time.perf_counter() - began)
        return embedder

    def _corpus_vectors(self, embedder: Embedder) -> np.ndarray:
        request = EncodeRequest(
            "document",
            self.data.doc_ids,
            self.data.doc_texts,
            None,
            self._settings_key(),
            self.data.corpus_hash(),
        )
        enc = encode_cached(
            embedder,
            request,
            cache=self.owner.cache,
            chunk=self.owner.encode_chunk,
            progress=self.owner.progress,
        )
        if not enc.cached:
            self._add("encode_corpus", enc.seconds)
        self.corpus_cached, self.truncated_docs, self.corpus_seconds = enc.cached, enc.truncated, enc.seconds
        self.docs_per_second = len(self.data.doc_ids) / enc.seconds if enc.seconds > 0 else None
        return enc.vectors

    def _query_vectors(self, embedder: Embedder) -> np.ndarray:
        instruction = None
        query_format = embedder.info.query_format
        if query_format == "qwen3":
            instruction = resolve_instruction(self.config.instruction, default=embedder.default_instruction)
        extra = {
            **self._settings_key(),
            "query_format": query_format,
            "instruction": instruction,
        }
        request = EncodeRequest(
            "query", self.qids, [self.data.queries[q] for q in self.qids], instruction, extra
        )
        enc = encode_cached(
            embedder,
            request,
            cache=self.owner.cache,
            chunk=self.owner.encode_chunk,
            progress=self.owner.progress,
        )
        self._add("encode_queries", enc.seconds)  # the original time when cached: ms/query stays honest
        return enc.vectors

    def _settings_key(self) -> dict[str, Any]:
        """Settings that change vectors but may be missing from a backend's fingerprint."""
        emb = self.config.embedding
        return {
            "backend": choose_backend(emb),
            "dtype_setting": emb.dtype,
            "device_setting": emb.device,
            "max_length_setting": emb.max_length,
        }

    def bm25(self) -> dict[str, Ranking]:
        key = self.data.corpus_hash()
        if key not in self.owner._bm25:
            began = time.perf_counter()
            self.owner._bm25[key] = (
                BM25Index(self.data.doc_ids, self.data.doc_texts),
                time.perf_counter() - began,
            )
        index, build_seconds = self.owner._bm25[key]
        self.timings["bm25_build"] = build_seconds
        matrix = index.matrix
        self.index_bytes += int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)
        began = time.perf_counter()
        out = {q: [str(d) for d, _ in index.search(self.data.queries[q], RETRIEVE_DEPTH)] for q in self.qids}
        self._add("search", time.perf_counter() - began)
        return out

    def rerank(self, dense: dict[str, Ranking]) -> dict[str, Ranking]:
        """Rerank the dense top ``rerank_top``; deeper dense results (if any) follow unchanged."""
        began = time.perf_counter()
        reranker = self.owner.reranker(self.config.reranker)
        self._add("load", time.perf_counter() - began)
        top, texts = self.config.rerank_top, dict(zip(self.data.doc_ids, self.data.doc_texts, strict=True))
        out: dict[str, Ranking] = {}
        began = time.perf_counter()
        bar = tqdm(
            self.qids,
            desc="reranking",
            unit="query",
            disable=not self.owner.progress,
            file=sys.stderr,
            leave=False,
        )
        for q in bar:
            head, tail = dense[q][:top], dense[q][top:]
            ranked = reranker.rerank(
                self.data.queries[q], [texts[d] for d in head], instruction=self.config.instruction
            )
            out[q] = ([head[r.index] for r in ranked] + tail)[:RETRIEVE_DEPTH]
        self._add("rerank", time.perf_counter() - began)
        return out
