"""The knowledge-base sections: the store, chunking and ingest limits (``kb``), and search."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator

from finesift.settings.base import MAX_TOP_K, SearchMode, _Section, override


class KBSettings(_Section):
    """Knowledge bases: the store, chunking of new KBs, and ingest limits."""

    store: str = Field(
        default="lancedb", description="store of new KBs: lancedb, a Milvus .db/http URI, or postgresql://"
    )
    store_token: SecretStr | None = Field(
        default=None, description="token of a Milvus server (user:password)"
    )
    chunk_size: int | None = Field(
        default=None,
        ge=32,
        le=8192,
        description="tokens per chunk (new KBs; default: what fits the embedding model's input, at most 400)",
    )
    chunk_overlap: int = Field(default=64, ge=0, le=4096, description="overlap tokens (new KBs)")
    commit_chunks: int = Field(default=256, ge=1, description="chunks per commit")
    max_file_mb: float = Field(default=64.0, gt=0, description="larger files are skipped")
    max_chars: int = Field(
        default=2_000_000, ge=1, description="characters of text per document (more: the document is refused)"
    )
    max_pages: int = Field(default=2_000, ge=1, description="pages per PDF (more: refused before parsing)")
    max_chunks: int = Field(default=20_000, ge=1, description="chunks per document (more: refused)")
    max_tokens: int = Field(default=2_000_000, ge=1, description="tokens per document (more: refused)")
    parse_timeout_s: float = Field(
        default=30.0, gt=0, description="seconds one PDF, DOCX or HTML file may take to parse"
    )
    parse_memory_mb: int = Field(
        default=2048, ge=64, description="address space of a parser process, in MiB (Linux)"
    )
    parse_workers: int = Field(
        default=2, ge=0, le=64, description="parser processes (0: parse in-process, without the limits)"
    )
    optimize_versions: int = Field(default=200, ge=2, description="compact after N versions")
    optimize_keep: float = Field(
        default=600.0, ge=0.001, description="seconds old store versions stay readable after a compaction"
    )
    ann_min_rows: int = Field(
        default=20_000,
        ge=1,
        description="LanceDB: chunks before compaction builds the ANN index (below: exact)",
    )
    ann_index: Literal["IVF_HNSW_SQ", "IVF_PQ"] = Field(
        default="IVF_HNSW_SQ", description="LanceDB ANN index type"
    )
    ann_nprobes: int = Field(
        default=20, ge=1, description="LanceDB ANN: IVF partitions searched (recall vs latency)"
    )
    ann_refine_factor: int = Field(
        default=0, ge=0, description="LanceDB ANN: re-rank k x this candidates exactly (0: off)"
    )
    ann_ef: int = Field(default=64, ge=1, description="LanceDB IVF_HNSW_SQ: HNSW candidate list size")


class SearchSettings(_Section):
    """How a knowledge-base search runs: the one declaration of every search option.

    The defaults of ``finesift search`` (each field is also its flag), of ``/v1/kbs/{kb}/search`` (each is
    also a request field) and of ``ask``; a search overrides them with :meth:`with_overrides`.
    """

    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, description="hits to return")
    mode: SearchMode = Field(default="hybrid", description="recall by dense vectors, BM25, or both (RRF)")
    candidates: int = Field(
        default=50, ge=1, le=MAX_TOP_K, description="dense top-K and BM25 top-K before fusion"
    )
    rerank: bool = Field(default=True, description="rerank the top candidates")
    rerank_top_n: int = Field(
        default=20, ge=1, le=MAX_TOP_K, description="fused candidates the reranker scores"
    )
    threshold: float | None = Field(
        default=None, allow_inf_nan=False, description="drop hits scoring below this"
    )
    dense_weight: float = Field(
        default=1.0, ge=0, allow_inf_nan=False, description="RRF weight of dense recall"
    )
    bm25_weight: float = Field(
        default=1.0, ge=0, allow_inf_nan=False, description="RRF weight of BM25 recall"
    )
    rrf_k: int = Field(default=60, ge=0, description="RRF constant: score 1 / (rrf_k + rank)")

    @model_validator(mode="after")
    def _some_weight(self) -> Self:
        if self.dense_weight + self.bm25_weight <= 0:
            raise ValueError("dense_weight and bm25_weight (the RRF weights) must not both be 0")
        return self

    def with_overrides(self, **overrides: Any) -> Self:
        """A copy with these fields replaced (``None`` keeps the setting); bad values raise InvalidRequest."""
        return override(self, **overrides)
