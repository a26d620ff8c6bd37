"""``finesift train embedding`` and ``finesift merge``: adapt the models to a corpus, merge checkpoints."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from finesift.cli.common import settings_of
from finesift.cli.options import config_option, given
from finesift.errors import InvalidRequest
from finesift.train.config import EmbeddingTrainConfig, Precision, TrainResult

train_app = typer.Typer(
    help="Fine-tune the models on your own pairs (BEIR folder or JSONL).", no_args_is_help=True
)

#: An option whose default is the run configuration's (declared once, in EmbeddingTrainConfig).
_E = partial(config_option, EmbeddingTrainConfig)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON summary instead of text.")]
DevOpt = Annotated[
    Path | None,
    typer.Option("--dev", help="Held-out dev pairs (BEIR folder or JSONL): nDCG@10 before and after."),
]
DevSplitOpt = Annotated[str, typer.Option("--dev-split", help="qrels/<split>.tsv of a BEIR --dev folder.")]
DevFractionOpt = Annotated[
    float,
    typer.Option("--dev-fraction", help="Hold out this share of the passages (never trained on) as dev."),
]


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
    split: Annotated[str | None, _E("split", help="qrels/<split>.tsv of a BEIR folder.")] = None,
    skip_empty: Annotated[
        bool | None,
        _E("skip_empty", help="Drop pairs whose query or positive text is empty (else an error)."),
    ] = None,
    epochs: Annotated[int | None, _E("epochs", help="Passes over the data.")] = None,
    batch_size: Annotated[
        int | None,
        _E("batch_size", help="Pairs per batch (in-batch negatives); all processes together under torchrun."),
    ] = None,
    accumulation: Annotated[int | None, _E("accumulation", help="Batches per optimizer step.")] = None,
    mini_batch_size: Annotated[
        int | None,
        _E(
            "mini_batch_size",
            help="GradCache: embed this many texts at a time with gradients; same result, less memory.",
        ),
    ] = None,
    lr: Annotated[float | None, _E("lr", help="Learning rate (1e-4 LoRA, 2e-5 full).")] = None,
    temperature: Annotated[float | None, _E("temperature", help="InfoNCE temperature τ.")] = None,
    hard_negatives: Annotated[
        int | None,
        _E("hard_negatives", help="Hard negatives per pair; mined by the model when the data lacks them."),
    ] = None,
    lora: Annotated[
        bool | None, _E("lora", "--lora/--full", help="LoRA adapters (merged at save) or all weights.")
    ] = None,
    seed: Annotated[int | None, _E("seed", help="Seed of the data order and initialisation.")] = None,
    resume: Annotated[
        bool | None, _E("resume", help="Continue from the latest checkpoint-N in --out.")
    ] = None,
    dims: Annotated[str | None, typer.Option(help="Matryoshka prefixes, e.g. 256,512 (full always).")] = None,
    save_steps: Annotated[
        int | None, _E("save_steps", help="Write checkpoint-N every N steps (0: only the end).")
    ] = None,
    max_steps: Annotated[int | None, _E("max_steps", help="Stop after N optimizer steps.")] = None,
    instruction: Annotated[
        str | None, _E("instruction", help="Query instruction (name or sentence).")
    ] = None,
    max_length: Annotated[int | None, _E("max_length", help="Tokens per text during training.")] = None,
    device: Annotated[str | None, _E("device", help="auto | cpu | cuda | cuda:N.")] = None,
    precision: Annotated[
        Precision | None, _E("precision", help="auto: bf16 autocast on CUDA, fp32 on CPU.")
    ] = None,
    gradient_checkpointing: Annotated[
        bool | None,
        _E("gradient_checkpointing", help="Recompute activations in backward: less memory, slower."),
    ] = None,
    progress: Annotated[
        bool | None,
        _E("progress", "--progress/--no-progress", help="A bar on a terminal, else a line every 30 s."),
    ] = None,
    dev: DevOpt = None,
    dev_split: DevSplitOpt = "dev",
    dev_fraction: DevFractionOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune an embedding model with the improved InfoNCE of the Qwen3 Embedding report."""
    from finesift.train.heldout import DevSpec
    from finesift.train.measured import train_embedding_measured

    config = EmbeddingTrainConfig(
        model=model, out=out, dims=parse_dims(dims),
        **given(
            split=split, skip_empty=skip_empty, epochs=epochs, batch_size=batch_size,
            accumulation=accumulation, mini_batch_size=mini_batch_size, lr=lr, temperature=temperature,
            hard_negatives=hard_negatives,
            lora=lora, seed=seed, save_steps=save_steps, max_steps=max_steps, instruction=instruction,
            max_length=max_length, device=device, precision=precision,
            gradient_checkpointing=gradient_checkpointing, resume=resume, progress=progress,
        ),
    )  # fmt: skip
    spec = DevSpec(path=dev, split=dev_split, fraction=dev_fraction)
    echo_result(train_embedding_measured(data, config, spec, hub=settings_of(ctx).hub), as_json=as_json)


def echo_result(result: TrainResult, *, as_json: bool) -> None:
    """A run's summary, printed once (by rank 0 of a data-parallel run): one JSON object, or the lines
    a person reads (the dev gain when measured)."""
    from finesift.train.distributed import launched_rank

    if launched_rank() != 0:
        return
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    processes = f", {result.world_size} processes" if result.world_size > 1 else ""
    typer.echo(
        f"trained {result.steps} steps ({result.examples} examples, {result.examples_per_s} examples/s, "
        f"{result.seconds} s{processes}); loss {result.loss_start} -> {result.loss_end}"
    )
    if result.dev is not None:
        d = result.dev
        typer.echo(
            f"dev {d['metric']}: {d['before']} -> {d['after']} ({d['gain']:+.4f}) on {d['queries']} "
            f"held-out queries"
        )
    typer.echo(f"model: {result.out}")


def merge(
    checkpoints: Annotated[
        list[Path], typer.Argument(help="Checkpoints A B [C …], merged in this order (A is t=0).")
    ],
    out: Annotated[Path, typer.Option(help="Output directory (new or empty).")],
    t: Annotated[
        float | None, typer.Option("--t", help="Two checkpoints: B's weight in [0, 1] (0.3: 70 % A).")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="One weight per checkpoint, e.g. 1,1,2 (default: equal).")
    ] = None,
    method: Annotated[str, typer.Option(help="slerp | linear.")] = "slerp",
    as_json: JsonOpt = False,
) -> None:
    """Merge checkpoints of one model tensor by tensor: slerp (linear fallback), successive for N > 2."""
    from finesift.train.merge import merge_checkpoints, merge_models

    if t is not None and (weights is not None or len(checkpoints) != 2):
        raise InvalidRequest("--t weighs B against A in a merge of two checkpoints; for more, pass --weights")
    if t is not None or (weights is None and len(checkpoints) == 2):
        first, second = checkpoints
        result = merge_checkpoints(first, second, out, t=0.5 if t is None else t, method=method)
    else:
        result = merge_models(checkpoints, out, weights=parse_weights(weights), method=method)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    weighting = f"t={result.t}" if result.t is not None else f"weights {result.weights}"
    typer.echo(
        f"merged {result.tensors} tensors ({result.slerp} slerp, {result.linear} linear, "
        f"{result.copied} copied) with {weighting}: {result.out}"
    )


def parse_weights(text: str | None) -> list[float] | None:
    """``"1,1,2"`` -> [1.0, 1.0, 2.0]; None -> None (equal weights)."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise InvalidRequest(f"--weights takes comma-separated numbers such as 1,1,2, not {text!r}") from exc


def register(app: typer.Typer) -> None:
    train_app.command("embedding")(embedding)
    app.add_typer(train_app, name="train", rich_help_panel="Training")
    app.command("merge", rich_help_panel="Training")(merge)
