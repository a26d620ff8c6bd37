"""``finesift serve``: the HTTP server (OpenAI/Cohere/Jina-compatible embeddings and rerank)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from finesift.cli.common import settings_of, with_role
from finesift.cli.options import both_models, setting
from finesift.errors import FinesiftError, MissingDependency
from finesift.runtime.threads import apply_thread_policy
from finesift.settings import Dtype, Settings

log = logging.getLogger(__name__)


Opt = typer.Option
HomeOpt = Annotated[Path | None, setting(path="home")]
AllowedHostOpt = Annotated[list[str] | None, setting(path="server.allowed_hosts", note="repeatable")]
IndexRootOpt = Annotated[list[Path] | None, setting(path="server.index_roots", note="repeatable")]
CorsOpt = Annotated[list[str] | None, setting(path="server.cors_origins", note="repeatable")]
SelfTestOpt = Annotated[bool, setting("--self-test", path="server.self_test")]
ServedNameOpt = Annotated[
    str | None, setting("--served-model-name", path="embedding.served_name", note="the embedding model's")
]
RerankerNameOpt = Annotated[
    str | None, setting("--reranker-served-model-name", path="reranker.served_name", note="the reranker's")
]


def serve(
    ctx: typer.Context,
    embedding_model: Annotated[str | None, setting(path="embedding.model")] = None,
    reranker_model: Annotated[str | None, setting(path="reranker.model")] = None,
    served_model_name: ServedNameOpt = None,
    reranker_served_model_name: RerankerNameOpt = None,
    host: Annotated[str | None, setting(path="server.host")] = None,
    port: Annotated[int | None, setting(path="server.port")] = None,
    api_key: Annotated[str | None, setting(path="server.api_key")] = None,
    home: HomeOpt = None,
    allowed_host: AllowedHostOpt = None,
    cors_origin: CorsOpt = None,
    index_root: IndexRootOpt = None,
    device: Annotated[str | None, both_models(name="device")] = None,
    dtype: Annotated[Dtype | None, both_models(name="dtype")] = None,
    max_length: Annotated[int | None, both_models(name="max_length")] = None,
    self_test: SelfTestOpt = False,
) -> None:
    """Serve /v1/embeddings, /v1/rerank, /v2/rerank, /v1/models, /v1/kbs, the search page at /, /health,
    /ready and /metrics. `--reranker-model none` serves embeddings only (knowledge bases then search
    without reranking); `--embedding-model none` serves a reranker only."""
    settings = settings_of(ctx)
    if home is not None:
        settings = settings.model_copy(update={"home": home})
    model_flags: dict[str, Any] = {"device": device, "dtype": dtype, "max_length": max_length}
    settings = with_role(
        settings, "embedding", model=embedding_model, served_name=served_model_name, **model_flags
    )
    settings = with_role(
        settings, "reranker", model=reranker_model, served_name=reranker_served_model_name, **model_flags
    )
    settings = with_role(
        settings, "server", host=host, port=port, api_key=api_key,
        allowed_hosts=tuple(allowed_host) if allowed_host else None,
        cors_origins=tuple(cors_origin) if cors_origin else None,
        index_roots=tuple(index_root) if index_root else None,
        self_test=self_test or None,
    )  # fmt: skip
    run_server(settings)


def run_server(settings: Settings) -> None:
    """Run uvicorn until interrupted; a model that fails to load stops it with that error."""
    apply_thread_policy(settings.threads.wait_policy, settings.threads.count)
    try:
        import uvicorn

        from finesift.server.app import create_app
        from finesift.server.connections import uvicorn_config
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "fastapi"
        raise MissingDependency(missing, "server", "needed by finesift serve") from exc
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings.server, log_level="info"))
    state = app.state.finesift
    failure: list[FinesiftError] = []

    def stop(error: FinesiftError) -> None:
        failure.append(error)
        server.should_exit = True

    state.on_fatal = stop
    server.run()
    if failure:
        raise failure[0]


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Server")(serve)
