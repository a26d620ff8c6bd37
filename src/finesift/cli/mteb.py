"""``finesift mteb``: MTEB tasks (or the model card's reranking protocol) through any finesift model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from finesift.cli.common import settings_of, with_models, with_role
from finesift.cli.options import both_models, setting
from finesift.settings import Dtype, Settings

if TYPE_CHECKING:
    from finesift.eval.mteb_run import TaskOutcome

TasksOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tasks",
        help="mteb task names, comma-separated or repeated; a local BEIR folder is a task too.",
    ),
]
BenchmarkOpt = Annotated[
    str | None,
    typer.Option(
        help="A finesift task set (finesift.eval.mteb_sets) or an mteb benchmark, e.g. 'MTEB(eng, v2)'."
    ),
]
RerankerOpt = Annotated[
    str | None,
    typer.Option(
        "--reranker",
        help="Rerank MODEL's top --rerank-top per query with this reranker (the model card's protocol).",
    ),
]


def mteb_command(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Argument(help="Embedder (the first stage with --reranker); default: embedding.model."),
    ] = None,
    tasks: TasksOpt = None,
    benchmark: BenchmarkOpt = None,
    reranker: RerankerOpt = None,
    embedding_backend: Annotated[str | None, setting("--embedding-backend", path="embedding.backend")] = None,
    reranker_backend: Annotated[str | None, setting("--reranker-backend", path="reranker.backend")] = None,
    rerank_top: Annotated[int | None, setting(path="eval.rerank_top")] = None,
    dim: Annotated[int | None, typer.Option(help="Matryoshka dimension (default: full).")] = None,
    dtype: Annotated[Dtype | None, both_models(name="dtype")] = None,
    device: Annotated[str | None, both_models(name="device")] = None,
    gguf_type: Annotated[str | None, both_models(name="gguf_type")] = None,
    max_length: Annotated[int | None, setting(path="embedding.max_length")] = None,
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv of a BEIR folder task.")] = "test",
    output: Annotated[
        Path, typer.Option(help="mteb's result files (results/...) and finesift's records go here.")
    ] = Path("mteb-results"),
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per mteb batch.")] = 32,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bars (tty).")
    ] = None,
) -> None:
    """Run MTEB tasks with any finesift backend; resumable per task (finished tasks are not run again)."""
    from finesift.embedding.factory import build_embedder
    from finesift.eval.mteb import MTEBEncoder, MTEBReranker
    from finesift.eval.mteb_run import MTEBRun
    from finesift.eval.mteb_tasks import resolve_tasks
    from finesift.rerank.factory import build_reranker

    settings = with_models(
        settings_of(ctx),
        embedding={
            "model": model,
            "backend": embedding_backend,
            "max_length": set_window(benchmark, max_length),
        },
        reranker={"model": reranker, "backend": reranker_backend},
        dtype=dtype,
        device=device,
        gguf_type=gguf_type,
    )
    settings = with_role(settings, "eval", rerank_top=rerank_top)
    names = [n.strip() for item in tasks or [] for n in item.split(",") if n.strip()]
    chosen = resolve_tasks(names, benchmark, split=split)
    show = sys.stderr.isatty() if progress is None else progress
    run = MTEBRun(
        output=output,
        first_stage_dir=_first_stage_dir(settings),
        rerank_top=settings.eval.rerank_top,
        batch_size=batch_size,
        progress=show,
        report=lambda line: typer.echo(line, err=True),
    )
    embedder = build_embedder(settings.embedding, settings.hub)
    if set_window(benchmark, max_length) is None:
        encoder = MTEBEncoder(embedder, dim=dim)
    else:  # a finesift task set (MLDR): the card's window on the document side, queries never cut
        from finesift.eval.mteb_sets import set_encoder

        encoder = set_encoder(embedder, str(benchmark), max_length=max_length, dim=dim)
    if reranker is None:
        outcomes = run.run_embedder(encoder, chosen)
    else:
        second = MTEBReranker(build_reranker(settings.reranker, settings.hub))
        outcomes = run.run_reranker(second, encoder, chosen)
    if as_json:
        summary = {"output": str(run.output), "tasks": [o.to_json() for o in outcomes]}
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        typer.echo(summary_table(outcomes))


def set_window(benchmark: str | None, max_length: int | None) -> int | None:
    """The embedder's window: ``--max-length`` when given, else a finesift task set's (the model card's
    8192 for MLDR and FollowIR), else ``None`` (the configured one)."""
    if max_length is not None or benchmark is None:
        return max_length
    from finesift.eval.mteb_tasks import task_sets

    if benchmark not in task_sets():
        return None
    from finesift.eval.mteb_sets import set_settings

    return set_settings(benchmark).max_length


def _first_stage_dir(settings: Settings) -> Path:
    return (settings.eval.cache_dir or settings.home / "eval-cache") / "mteb-first-stage"


def summary_table(outcomes: list[TaskOutcome]) -> str:
    """One line per task: name, type, main score, run or cached, seconds, where its instruction came from."""
    rows = [("task", "type", "main_score", "status", "seconds", "instruction")]
    for o in outcomes:
        score = "-" if o.main_score is None else f"{o.main_score:.4f}"
        rows.append((o.task, o.task_type, score, o.status, f"{o.seconds:.1f}", str(o.instruction["source"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    scored = [o.main_score for o in outcomes if o.main_score is not None]
    if len(scored) > 1:
        lines.append(f"mean main_score over {len(scored)} tasks: {sum(scored) / len(scored):.4f}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("mteb", rich_help_panel="Evaluation")(mteb_command)
