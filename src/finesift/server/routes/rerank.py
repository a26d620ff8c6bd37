"""``POST /v1/rerank`` (Cohere v1 and Jina shapes) and ``POST /v2/rerank`` (Cohere v2)."""

from __future__ import annotations

import math
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from finesift.server.routes.common import MODEL_ERRORS, State, check_model
from finesift.server.schemas import (
    RerankRequest,
    RerankResponse,
    RerankV2Request,
    RerankV2Response,
    TextDocument,
)

router = APIRouter(tags=["rerank"])
#: Cohere bills one search unit per query and up to 100 documents.
DOCUMENTS_PER_SEARCH_UNIT = 100


def _meta(version: str, documents: int) -> dict[str, Any]:
    units = math.ceil(documents / DOCUMENTS_PER_SEARCH_UNIT)
    return {"api_version": {"version": version}, "billed_units": {"search_units": units}}


@router.post("/v1/rerank", response_model=RerankResponse, responses=MODEL_ERRORS)
async def rerank_v1(body: RerankRequest, state: State) -> Any:
    """Score documents against a query; results sorted by score, each with its original `index`."""
    service = state.require_rerank()
    check_model(state, body.model, "reranker", service.reranker.model_id)
    model = state.names.reranker or service.reranker.model_id
    texts = [d.text if isinstance(d, TextDocument) else d for d in body.documents]
    ranked = await service.rerank(body.query, texts, instruction=body.instruction, top_n=body.top_n)
    results = []
    for index, score in ranked.results:
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if body.return_documents:
            doc = body.documents[index]
            result["document"] = doc.model_dump() if isinstance(doc, TextDocument) else {"text": doc}
        results.append(result)
    return JSONResponse(
        {
            "id": str(uuid.uuid4()),
            "model": model,
            "results": results,
            "usage": {"total_tokens": ranked.tokens},
            "meta": _meta("1", len(texts)),
        }
    )


@router.post("/v2/rerank", response_model=RerankV2Response, responses=MODEL_ERRORS)
async def rerank_v2(body: RerankV2Request, state: State) -> Any:
    """Cohere v2 rerank: results sorted by score, each with its original `index`."""
    service = state.require_rerank()
    check_model(state, body.model, "reranker", service.reranker.model_id)
    ranked = await service.rerank(body.query, body.documents, instruction=body.instruction, top_n=body.top_n)
    results = [{"index": index, "relevance_score": score} for index, score in ranked.results]
    return JSONResponse(
        {"id": str(uuid.uuid4()), "results": results, "meta": _meta("2", len(body.documents))}
    )
