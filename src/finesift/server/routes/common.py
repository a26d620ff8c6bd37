"""What every route module shares: the state dependency, documented errors, model-name check."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any

from fastapi import Depends, Request

from finesift.errors import NotFound
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
    404: _error("Unknown model"),
    413: _error("Body too large"),
    422: _error("Invalid request: wrong types, empty input, limits exceeded"),
    429: _error("Queue full; retry after the Retry-After header"),
    503: _error("Models loading, server draining, or deadline exceeded"),
}


def check_model(requested: str | None, served: str, role: str) -> None:
    """Accept no model, the served id, or its last path component; otherwise 404 naming the served one."""
    if requested is None or requested in (served, PurePath(served).name):
        return
    raise NotFound(f"model {requested!r} is not served here; this server's {role} model is {served!r}")
