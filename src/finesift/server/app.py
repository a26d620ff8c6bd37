"""``create_app(settings, services)``: the FastAPI app, its middleware and its lifespan.

Middleware, outermost first: metrics, Host check (when bound to loopback or names are configured),
CORS (only when origins are configured), cross-site write refusal, body read timeout, body size limit,
Bearer auth (when a key is set). Connection limits (header deadline, keep-alive, concurrency) live in
:mod:`finesift.server.connections`, which ``finesift serve`` hands to uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from finesift import __version__
from finesift.server.answering import Answerers
from finesift.server.connections import BodyTimeoutMiddleware
from finesift.server.errors import install
from finesift.server.kb_service import KBRegistry
from finesift.server.metrics import Metrics, MetricsMiddleware
from finesift.server.naming import check_served_name
from finesift.server.security import (
    LOOPBACK_NAMES,
    BearerAuthMiddleware,
    BodyLimitMiddleware,
    CrossSiteMiddleware,
    HostCheckMiddleware,
    check_bind,
    is_loopback,
    is_public,
)
from finesift.server.state import ModelServices, ServerState
from finesift.services import build_services
from finesift.settings import Settings

#: Route modules; each exposes ``router``.
ROUTE_MODULES = [
    "finesift.server.routes.health",
    "finesift.server.routes.models",
    "finesift.server.routes.embeddings",
    "finesift.server.routes.rerank",
    "finesift.server.routes.kbs",
    "finesift.server.routes.web",
    "finesift.server.routes.ask",
]

DESCRIPTION = (
    "Qwen3-Embedding and Qwen3-Reranker behind OpenAI (`/v1/embeddings`), Cohere and Jina (`/v1/rerank`) "
    "and Cohere v2 (`/v2/rerank`) compatible endpoints. Errors use the OpenAI shape "
    '`{"error": {"message", "type", "code", "param"}}`.'
)


def create_app(settings: Settings | None = None, services: ModelServices | None = None) -> FastAPI:
    """The server app. Models load in the background after startup; ``/ready`` says when they are in."""
    settings = settings or Settings()
    check_bind(settings.server)
    check_served_name(settings.embedding)
    if services is None:
        services = build_services(settings)
    state = ServerState(settings, services, Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One registry of open KBs per run of the app: search, ask and chat all read through it.
        kbs = KBRegistry(settings, state)
        answerers = Answerers(kbs)
        app.state.finesift_kbs, app.state.finesift_answerers = kbs, answerers
        state.start()
        try:
            yield
        finally:
            await state.stop()
            answerers.close()
            await kbs.aclose()

    app = FastAPI(title="finesift", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.finesift = state
    install(app, retry_after=settings.server.retry_after)
    for name in ROUTE_MODULES:
        app.include_router(import_module(name).router)
    _add_middleware(app, settings, state)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


def _add_middleware(app: FastAPI, settings: Settings, state: ServerState) -> None:
    server = settings.server
    # add_middleware puts each new one outside the previous ones: add innermost first.
    if server.api_key is not None:
        app.add_middleware(BearerAuthMiddleware, key=server.api_key.get_secret_value())
    app.add_middleware(BodyLimitMiddleware, limit=server.max_body_bytes, upload_limit=server.max_upload_bytes)
    app.add_middleware(BodyTimeoutMiddleware, timeout=server.body_timeout, deadline=server.body_deadline)
    app.add_middleware(CrossSiteMiddleware, origins=server.cors_origins)
    if server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(server.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    allowed = set(server.allowed_hosts)
    if is_loopback(server.host):
        allowed |= LOOPBACK_NAMES
    if allowed:
        app.add_middleware(HostCheckMiddleware, allowed=allowed)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's schema, plus the Bearer scheme and its 401 on every protected route when a key is set."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    if settings.server.api_key is not None:
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if is_public(path):
                    operation["security"] = []
                    continue
                operation["security"] = [{"bearer": []}]
                operation.setdefault("responses", {})["401"] = {
                    "description": "Missing or invalid API key",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
                    },
                }
    app.openapi_schema = schema
    return schema
