"""``finesift doctor``: check backends against the model cards' code (transformers fp32)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from finesift.cli.common import settings_of, with_role
from finesift.cli.options import both_models
from finesift.doctor import DoctorOptions, Thresholds, run_doctor
from finesift.doctor.run import parse_backends, parse_pairs
from finesift.runtime.threads import thread_state


def doctor(
    ctx: typer.Context,
    embedding_model: Annotated[
        str | None, typer.Option("--embedding-model", "-m", help="Hub id or local directory.")
    ] = None,
    reranker_model: Annotated[
        str | None, typer.Option("--reranker-model", "-r", help="Also check reranking.")
    ] = None,
    backends: Annotated[
        str,
        typer.Option(
            help="Comma-separated backend names to check (auto: the one finesift picks for the model)."
        ),
    ] = "auto",
    url: Annotated[list[str] | None, typer.Option(help="NAME=URL for a remote backend (repeatable).")] = None,
    served_model: Annotated[
        list[str] | None, typer.Option(help="NAME=MODEL the remote serves (repeatable).")
    ] = None,
    gguf: Annotated[
        str | None, typer.Option(help="GGUF file for llamacpp (default: convert the model).")
    ] = None,
    reranker_gguf: Annotated[str | None, typer.Option(help="GGUF file of the reranker for llamacpp.")] = None,
    gguf_type: Annotated[
        str, typer.Option(help="Conversion type: f32 | f16 | bf16 | q8_0 | q5_k_m | q4_k_m.")
    ] = "f16",
    device: Annotated[str | None, both_models(name="device")] = None,
    min_cosine: Annotated[float, typer.Option(help="Pass mark: cosine to the reference.")] = 0.99,
    max_delta: Annotated[float, typer.Option(help="Pass mark: largest |score difference|.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Embed and rerank a fixed multilingual probe through each backend; compare with the model card's code.

    Exits 1 when any backend deviates; each failing row names the likely cause and its fix.
    """
    settings = with_role(settings_of(ctx), "embedding", model=embedding_model, device=device)
    settings = with_role(settings, "reranker", model=reranker_model, device=device)
    options = DoctorOptions(
        backends=parse_backends(backends),
        urls=parse_pairs(url or [], "--url"),
        served_models=parse_pairs(served_model or [], "--served-model"),
        gguf=gguf,
        reranker_gguf=reranker_gguf,
        gguf_type=gguf_type,
        device=settings.embedding.device,
        thresholds=Thresholds(min_cosine=min_cosine, max_delta=max_delta),
    )
    report = run_doctor(settings, options, rerank=reranker_model is not None)
    threads = thread_state()
    if as_json:
        body = {**report.to_json(), "threads": asdict(threads)}
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        typer.echo(report.table())
        typer.echo(threads.line())
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Models")(doctor)
