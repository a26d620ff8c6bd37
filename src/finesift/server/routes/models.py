"""``GET /v1/models`` (OpenAI list shape)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from finesift.server.naming import QUERY_SUFFIX
from finesift.server.routes.common import State
from finesift.server.schemas import ErrorResponse, ModelCard, ModelList

router = APIRouter(tags=["models"])


@router.get(
    "/v1/models",
    response_model=ModelList,
    responses={503: {"model": ErrorResponse, "description": "Models still loading"}},
)
async def models(state: State) -> Any:
    """The served models (OpenAI list shape, with task, dimension and max_length): the embedding model,
    its `<name>:query` alias (inputs embedded as queries) and the reranker; a role served as `none` is
    not listed."""
    state.require_ready()
    names, cards = state.names, []
    if state.embeddings is not None and names.embedding is not None:
        embedding = state.embeddings.embedder.info
        aliases = ((names.embedding, "embedding"), (names.embedding + QUERY_SUFFIX, "embedding-query"))
        cards += [
            ModelCard(
                id=name,
                created=state.started,
                task=task,
                dimension=embedding.dimension,
                max_length=embedding.max_length,
            )
            for name, task in aliases
        ]
    if state.rerank is not None and names.reranker is not None:
        rerank = state.rerank.reranker.info
        cards.append(
            ModelCard(id=names.reranker, created=state.started, task="rerank", max_length=rerank.max_length)
        )
    return ModelList(data=cards)
