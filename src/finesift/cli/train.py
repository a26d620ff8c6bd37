"""``finesift train embedding`` and ``finesift merge``: adapt the models to a corpus, merge checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from finesift.cli.common import settings_of
from finesift.errors import InvalidRequest

train_app = typer.Typer(
    help="Fine-tune the models on your own pairs (BEIR folder or JSONL).", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON summary instead of text.")]


def parse_dims(text: str | None) -> tuple[int, ...]:
    """``"256,512"`` -> (256, 512); empty -> ()."""
    if not text:
        return ()
    try:
        dims = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError as exc:
        raise InvalidRequest(f"--dims takes comma-separated integers such as 256,512, not {text!r}") from exc
    if any(d < 1 for d in dims):
        raise InvalidRequest(f"--dims must be positive, not {text!r}")
    return dims


def embedding(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="BEIR folder or JSONL of {query, positive, negatives?}.")],
    model: Annotated[str, typer.Option(help="Base model: a local directory or hub id.")],
    out: Annotated[Path, typer.Option(help="Output directory (final model + checkpoint-N).")],
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv of a BEIR folder.")] = "train",
    skip_empty: Annotated[
        bool, typer.Option(help="Drop pairs whose query or positive text is empty (else an error).")
    ] = False,
    epochs: Annotated[int, typer.Option(help="Passes over the data.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch (in-batch negatives).")] = 16,
    accumulation: Annotated[int, typer.Option(help="Batches per optimizer step.")] = 1,
    lr: Annotated[float | None, typer.Option(help="Learning rate (1e-4 LoRA, 2e-5 full).")] = None,
    temperature: Annotated[float, typer.Option(help="InfoNCE temperature τ.")] = 0.05,
    hard_negatives: Annotated[
        int, typer.Option(help="Hard negatives per pair; mined by the model when the data lacks them.")
    ] = 1,
    lora: Annotated[
        bool, typer.Option("--lora/--full", help="LoRA adapters (merged at save) or all weights.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the data order and initialisation.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint-N in --out.")] = False,
    dims: Annotated[str | None, typer.Option(help="Matryoshka prefixes, e.g. 256,512 (full always).")] = None,
    save_steps: Annotated[int, typer.Option(help="Write checkpoint-N every N steps (0: only the end).")] = 0,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps.")] = None,
    instruction: Annotated[str | None, typer.Option(help="Query instruction (name or sentence).")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per text during training.")] = 512,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")] = "auto",
    precision: Annotated[
        str, typer.Option(help="auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16.")
    ] = "auto",
    gradient_checkpointing: Annotated[
        bool, typer.Option(help="Recompute activations in backward: less memory, slower.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="A bar on a terminal, else a line every 30 s.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune an embedding model with the improved InfoNCE of the Qwen3 Embedding report."""
    from finesift.train.embedding import EmbeddingTrainConfig, train_embedding

    if precision not in ("auto", "fp32", "bf16"):
        raise InvalidRequest(f"--precision must be auto, fp32 or bf16, not {precision!r}")
    config = EmbeddingTrainConfig(
        model=model,
        out=out,
        split=split,
        skip_empty=skip_empty,
        epochs=epochs,
        batch_size=batch_size,
        accumulation=accumulation,
        lr=lr,
        temperature=temperature,
        hard_negatives=hard_negatives,
        lora=lora,
        seed=seed,
        dims=parse_dims(dims),
        save_steps=save_steps,
        max_steps=max_steps,
        instruction=instruction,
        max_length=max_length,
        device=device,
        precision=precision,  # type: ignore[arg-type]
        gradient_checkpointing=gradient_checkpointing,
        resume=resume,
        progress=progress,
    )
    result = train_embedding(data, config, hub=settings_of(ctx).hub)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    typer.echo(
        f"trained {result.steps} steps ({result.examples} examples, {result.examples_per_s} examples/s, "
        f"{result.seconds} s); loss {result.loss_start} -> {result.loss_end}"
    )
    typer.echo(f"model: {result.out}")


def merge(
    first: Annotated[Path, typer.Argument(help="Checkpoint A (t=0).")],
    second: Annotated[Path, typer.Argument(help="Checkpoint B (t=1).")],
    out: Annotated[Path, typer.Option(help="Output directory (new or empty).")],
    t: Annotated[float, typer.Option("--t", help="Interpolation weight of B, in [0, 1].")] = 0.5,
    method: Annotated[str, typer.Option(help="slerp | linear.")] = "slerp",
    as_json: JsonOpt = False,
) -> None:
    """Merge two checkpoints of one model tensor by tensor (slerp with a linear fallback)."""
    from finesift.train.merge import merge_checkpoints

    result = merge_checkpoints(first, second, out, t=t, method=method)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    typer.echo(
        f"merged {result.tensors} tensors ({result.slerp} slerp, {result.linear} linear, "
        f"{result.copied} copied) with t={result.t}: {result.out}"
    )


def register(app: typer.Typer) -> None:
    train_app.command("embedding")(embedding)
    app.add_typer(train_app, name="train", rich_help_panel="Training")
    app.command("merge", rich_help_panel="Training")(merge)
