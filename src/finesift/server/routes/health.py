"""``GET /health``, ``GET /ready`` (both also ``HEAD``, both without the API key) and ``GET /metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from finesift.server.routes.common import State
from finesift.server.schemas import Health, Readiness

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health)
@router.head("/health", include_in_schema=False)
async def health() -> Any:
    """Alive (the process answers); needs no API key."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Loading, draining, or failed to load"}},
)
@router.head("/ready", include_in_schema=False)
async def ready(state: State) -> Any:
    """Ready to serve: models loaded and warmed up, not draining; needs no API key (a readiness probe)."""
    reason = state.readiness()
    if reason is None:
        return {"status": "ready"}
    headers = {"Retry-After": str(state.settings.server.retry_after)}
    return JSONResponse({"status": state.phase, "detail": reason}, status_code=503, headers=headers)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        }
    },
)
async def metrics(state: State) -> Response:
    """Prometheus metrics: requests, latency per stage, tokens, queue depth, batch sizes."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
