"""``GET /v1/models`` (OpenAI list shape)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from finesift.server.routes.common import State
from finesift.server.schemas import ErrorResponse, ModelCard, ModelList

router = APIRouter(tags=["models"])


@router.get(
    "/v1/models",
    response_model=ModelList,
    responses={503: {"model": ErrorResponse, "description": "Models still loading"}},
)
async def models(state: State) -> Any:
    """The served models (OpenAI list shape, with task, dimension and max_length)."""
    embeddings, rerank = state.require_embeddings(), state.require_rerank()
    embedding, reranker = embeddings.embedder.info, rerank.reranker.info
    cards = [
        ModelCard(
            id=embedding.model_id,
            created=state.started,
            task="embedding",
            dimension=embedding.dimension,
            max_length=embedding.max_length,
        ),
        ModelCard(id=reranker.model_id, created=state.started, task="rerank", max_length=reranker.max_length),
    ]
    return ModelList(data=cards)
