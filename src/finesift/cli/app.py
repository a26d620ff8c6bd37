"""The ``finesift`` Typer application and its entry point."""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from finesift import __version__
from finesift.cli.common import Context, configure_logging, with_role
from finesift.cli.errors import OneLineErrors
from finesift.cli.options import setting
from finesift.cli.quiet import quiet_library_warnings
from finesift.errors import InvalidRequest
from finesift.runtime.threads import apply_thread_policy
from finesift.settings import HubSource, Settings, describe

app = typer.Typer(
    cls=OneLineErrors,
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
    "finesift.cli.mteb",
    "finesift.cli.doctor",
    "finesift.cli.gguf",
    "finesift.cli.synth",
    "finesift.cli.train",
    "finesift.cli.train_reranker",
    "finesift.cli.train_recipe",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"finesift {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[Path | None, setting(path="home")] = None,
    hub: Annotated[HubSource | None, setting(path="hub.source")] = None,
    offline: Annotated[bool, setting(path="hub.offline")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v info, -vv debug.")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    """Faithful, fast two-stage retrieval with Qwen3-Embedding and Qwen3-Reranker."""
    configure_logging(verbose)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise InvalidRequest(f"invalid FINESIFT_* setting {describe(exc)}") from exc
    # Before any command imports torch: OpenMP reads these once, when it loads.
    apply_thread_policy(settings.threads.wait_policy, settings.threads.count)
    settings = with_role(settings, "hub", source=hub, offline=offline or None)
    if home is not None:
        settings = settings.model_copy(update={"home": home})
    ctx.obj = Context(settings)


for _name in COMMAND_MODULES:
    import_module(_name).register(app)


def main() -> None:
    """Console entry point: run the app (errors become one line and an exit code, see OneLineErrors)."""
    quiet_library_warnings()
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
