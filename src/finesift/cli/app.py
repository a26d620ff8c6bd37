"""The ``finesift`` Typer application and its entry point."""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path
from typing import Annotated

import typer

from finesift import __version__
from finesift.cli.common import Context, configure_logging
from finesift.cli.errors import exit_code, one_line
from finesift.cli.quiet import quiet_library_warnings
from finesift.errors import FinesiftError, InvalidRequest
from finesift.settings import Settings

app = typer.Typer(
    name="finesift",
    help="Faithful, fast two-stage retrieval with Qwen3-Embedding and Qwen3-Reranker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Command modules; each exposes ``register(app)``.
COMMAND_MODULES = [
    "finesift.cli.quickstart",
    "finesift.cli.engine",
    "finesift.cli.kb",
    "finesift.cli.ask",
    "finesift.cli.serve",
    "finesift.cli.eval",
    "finesift.cli.doctor",
    "finesift.cli.gguf",
    "finesift.cli.synth",
    "finesift.cli.train",
    "finesift.cli.train_reranker",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"finesift {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(help="Where knowledge bases live (env FINESIFT_HOME).")] = None,
    hub: Annotated[
        str | None, typer.Option(help="huggingface | modelscope (env FINESIFT_HUB__SOURCE).")
    ] = None,
    offline: Annotated[bool, typer.Option(help="Never download; use cached or local models only.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v info, -vv debug.")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    """Faithful, fast two-stage retrieval with Qwen3-Embedding and Qwen3-Reranker."""
    configure_logging(verbose)
    try:
        base = Settings()
        hub_update = {k: v for k, v in {"source": hub, "offline": offline or None}.items() if v is not None}
        settings = base.model_copy(
            update={
                "hub": base.hub.model_validate({**base.hub.model_dump(), **hub_update}),
                **({"home": home} if home is not None else {}),
            }
        )
    except ValueError as exc:
        raise InvalidRequest(f"invalid option or FINESIFT_* setting: {exc}") from exc
    ctx.obj = Context(settings)


for _name in COMMAND_MODULES:
    import_module(_name).register(app)


def main() -> None:
    """Console entry point: run the app; finesift errors become one line and an exit code."""
    quiet_library_warnings()
    try:
        app()
    except FinesiftError as exc:
        typer.echo(one_line(exc), err=True)
        sys.exit(exit_code(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
