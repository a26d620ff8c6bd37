"""What every route module shares: the state dependency, documented errors, model-name check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from finesift.server.naming import resolve_model
from finesift.server.schemas import ErrorResponse
from finesift.server.state import ServerState


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.finesift
    return state


State = Annotated[ServerState, Depends(get_state)]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


#: Error responses of every model route, as documented in the OpenAPI schema.
MODEL_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed JSON, or a Host header that is not allowed"),
    404: _error("Unknown model, or a role this server does not serve (started with --...-model none)"),
    413: _error("Body too large"),
    422: _error("Invalid request: wrong types, empty input, limits exceeded"),
    429: _error("Queue full; retry after the Retry-After header"),
    503: _error("Models loading, server draining, or deadline exceeded"),
}


def check_model(state: ServerState, requested: str | None, role: str, model_id: str) -> bool:
    """Whether ``requested`` asks for query mode; 404 (listing the served names) if it names no served
    model of ``role``. See :func:`finesift.server.naming.resolve_model`."""
    names = state.names
    served = names.embedding if role == "embedding" else names.reranker
    return resolve_model(requested, served=served or model_id, model_id=model_id, role=role, names=names)
