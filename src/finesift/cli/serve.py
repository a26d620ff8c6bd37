"""``finesift serve``: the HTTP server (OpenAI/Cohere/Jina-compatible embeddings and rerank)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from finesift.cli.common import settings_of, with_role
from finesift.errors import FinesiftError, MissingDependency
from finesift.settings import Settings

log = logging.getLogger(__name__)


Opt = typer.Option
EmbeddingOpt = Annotated[str | None, Opt(help="Embedding model: hub id, local dir, or fake.")]
RerankerOpt = Annotated[str | None, Opt(help="Reranker model: hub id, local dir, or fake.")]
HostOpt = Annotated[str | None, Opt(help="Address to bind (default 127.0.0.1).")]
PortOpt = Annotated[int | None, Opt(help="Port (default 8000).")]
KeyOpt = Annotated[str | None, Opt(help="Require 'Authorization: Bearer KEY' (or FINESIFT_SERVER__API_KEY).")]
HomeOpt = Annotated[Path | None, Opt(help="Where knowledge bases live (env FINESIFT_HOME).")]
AllowedHostOpt = Annotated[list[str] | None, Opt(help="Extra Host name to accept (repeatable).")]
IndexRootOpt = Annotated[
    list[Path] | None, Opt(help="Folder whose files POST /v1/kbs/{kb}/index may read (repeatable).")
]
CorsOpt = Annotated[list[str] | None, Opt(help="Origin allowed by CORS (repeatable); default CORS off.")]
DeviceOpt = Annotated[str | None, Opt(help="auto | cpu | cuda | cuda:N (both models).")]
DtypeOpt = Annotated[str | None, Opt(help="auto | float32 | bfloat16 | float16 (both models).")]
MaxLenOpt = Annotated[int | None, Opt(help="Tokens per text / pair (both models).")]
SelfTestOpt = Annotated[
    bool, Opt("--self-test", help="Before serving, check the models against transformers fp32 (doctor).")
]


def serve(
    ctx: typer.Context,
    embedding_model: EmbeddingOpt = None,
    reranker_model: RerankerOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    api_key: KeyOpt = None,
    home: HomeOpt = None,
    allowed_host: AllowedHostOpt = None,
    cors_origin: CorsOpt = None,
    index_root: IndexRootOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    max_length: MaxLenOpt = None,
    self_test: SelfTestOpt = False,
) -> None:
    """Serve /v1/embeddings, /v1/rerank, /v2/rerank, /v1/models, /v1/kbs, the search page at /, /health,
    /ready and /metrics."""
    settings = settings_of(ctx)
    if home is not None:
        settings = settings.model_copy(update={"home": home})
    model_flags: dict[str, Any] = {"device": device, "dtype": dtype, "max_length": max_length}
    settings = with_role(settings, "embedding", model=embedding_model, **model_flags)
    settings = with_role(settings, "reranker", model=reranker_model, **model_flags)
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
    try:
        import uvicorn

        from finesift.server.app import create_app
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "fastapi"
        raise MissingDependency(missing, "server", "needed by finesift serve") from exc
    app = create_app(settings)
    server_settings = settings.server
    config = uvicorn.Config(
        app, host=server_settings.host, port=server_settings.port, log_level="info",
        timeout_graceful_shutdown=int(server_settings.shutdown_timeout) or None, server_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
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
