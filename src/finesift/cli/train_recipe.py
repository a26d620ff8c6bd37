"""``finesift train recipe``: stage 1 on weak pairs, stage 2 with hard negatives, the merge — one config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from finesift.cli.common import settings_of
from finesift.cli.train import JsonOpt, train_app


def recipe(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", help="The recipe TOML (docs/guides/training.md).")],
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="A bar on a terminal, else a line every 30 s.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Run the staged recipe: weak pairs, then supervised pairs from stage 1, then merge stage 2's models.

    A re-run skips finished stages (same fingerprint) and resumes an interrupted one.
    """
    from finesift.train.recipe import load_recipe, run_recipe

    result = run_recipe(load_recipe(config), hub=settings_of(ctx).hub, progress=progress)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    for name, stage in result.stages.items():
        state = "skipped (finished earlier)" if stage["skipped"] else f"{stage['steps']} steps"
        typer.echo(f"{name}: {state}; loss {stage['loss_start']} -> {stage['loss_end']}: {stage['out']}")
    merge = result.merge
    typer.echo(f"merged {len(merge['weights'])} models ({merge['method']}): {result.out}")


def register(app: typer.Typer) -> None:
    """Adds ``recipe`` to the ``train`` group that :mod:`finesift.cli.train` registers."""
    train_app.command("recipe")(recipe)
