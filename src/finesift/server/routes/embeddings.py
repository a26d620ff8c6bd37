"""``POST /v1/embeddings`` (OpenAI)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from finesift.errors import InvalidRequest
from finesift.server.inference import embed_request
from finesift.server.naming import QUERY_SUFFIX
from finesift.server.routes.common import MODEL_ERRORS, State, check_model
from finesift.server.schemas import EmbeddingRequest, EmbeddingResponse

router = APIRouter(tags=["embeddings"])


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """Floats, or base64 of the little-endian float32 bytes (OpenAI's ``base64`` format)."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    values: list[float] = vector.tolist()
    return values


@router.post("/v1/embeddings", response_model=EmbeddingResponse, responses=MODEL_ERRORS)
async def create_embeddings(body: EmbeddingRequest, state: State) -> Any:
    """Embed texts (OpenAI schema). Queries: set `input_type` to `query`, or send `model` as
    `<served name>:query` (for clients that cannot send `input_type`); the Qwen3 instruction is applied."""
    service = state.require_embeddings()
    query = check_model(state, body.model, "embedding", service.embedder.info.model_id)
    if query and body.input_type == "document" and "input_type" in body.model_fields_set:
        raise InvalidRequest(
            f'model {body.model!r} embeds queries but "input_type" is "document"; '
            f'drop one: send the served name without {QUERY_SUFFIX!r}, or drop "input_type"'
        )
    model = body.model or state.names.embedding or service.embedder.info.model_id
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    request = embed_request(
        texts,
        input_type="query" if query else body.input_type,
        instruction=body.instruction,
        dimensions=body.dimensions,
        truncate=body.truncate,
    )
    result = await service.embed(request)
    data = [
        {"object": "embedding", "index": i, "embedding": encode_vector(vec, body.encoding_format)}
        for i, vec in enumerate(result.vectors)
    ]
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    headers = {"X-Finesift-Truncated": str(result.truncated)} if result.truncated else None
    return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage}, headers=headers)
