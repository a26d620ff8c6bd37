"""What one evaluation run measures: the pipeline mode, the models and their options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from finesift.embedding.registry import choose_backend as embedding_backend
from finesift.errors import InvalidRequest
from finesift.rerank.registry import choose_backend as reranker_backend
from finesift.settings import EmbeddingSettings, RerankSettings

Mode = Literal["dense", "bm25", "hybrid", "rerank"]
MODES: tuple[str, ...] = get_args(Mode)
#: How deep every mode retrieves: the largest cutoff among the reported metrics.
RETRIEVE_DEPTH = 100


@dataclass(frozen=True)
class EvalConfig:
    """One configuration: ``mode`` plus the embedding and reranker settings it uses.

    ``dim`` is the Matryoshka dimension (``None``: full); ``instruction`` applies to the query side
    of the embedder and to the reranker (``None``: each model's default); ``rerank_top`` dense
    candidates are reranked per query (the published protocol: 100).
    """

    mode: Mode = "dense"
    embedding: EmbeddingSettings = field(default_factory=lambda: EmbeddingSettings.model_validate({}))
    reranker: RerankSettings = field(default_factory=lambda: RerankSettings.model_validate({}))
    dim: int | None = None
    instruction: str | None = None
    rerank_top: int = RETRIEVE_DEPTH
    label: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidRequest(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if isinstance(self.rerank_top, bool) or not isinstance(self.rerank_top, int) or self.rerank_top < 1:
            raise InvalidRequest(f"rerank_top must be a positive integer, not {self.rerank_top!r}")

    @property
    def uses_embedder(self) -> bool:
        return self.mode != "bm25"

    @property
    def uses_reranker(self) -> bool:
        return self.mode == "rerank"

    def describe(self) -> dict[str, Any]:
        """The options that matter for this mode, JSON-safe; ``auto`` backends are shown resolved."""
        out: dict[str, Any] = {"mode": self.mode}
        if self.uses_embedder:
            out.update(
                embedding_model=self.embedding.model,
                embedding_backend=embedding_backend(self.embedding),
                dim=self.dim,
                dtype=self.embedding.dtype,
                instruction=self.instruction,
            )
        if self.uses_reranker:
            out.update(
                reranker_model=self.reranker.model,
                reranker_backend=reranker_backend(self.reranker),
                rerank_top=self.rerank_top,
            )
        return out
