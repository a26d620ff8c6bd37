"""``finesift train reranker``: yes/no SFT of a Qwen3 reranker on pairs, negatives mined from the corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from finesift.cli.common import settings_of, with_role
from finesift.cli.train import JsonOpt, train_app
from finesift.rerank.prompts import DEFAULT_INSTRUCTION

if TYPE_CHECKING:
    from finesift.embedding.embedder import Embedder

Opt = typer.Option


def reranker(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="BEIR folder or JSONL of {query, positive, negatives?}.")],
    model: Annotated[str, Opt(help="Base reranker: a local directory or hub id (Qwen3ForCausalLM).")],
    out: Annotated[Path, Opt(help="Output directory (final model + checkpoint-N).")],
    split: Annotated[str, Opt(help="qrels/<split>.tsv of a BEIR folder.")] = "train",
    epochs: Annotated[int, Opt(help="Passes over the examples.")] = 1,
    batch_size: Annotated[int, Opt(help="Examples (query, document, label) per step.")] = 8,
    lr: Annotated[float | None, Opt(help="Learning rate (1e-4 LoRA, 1e-5 full).")] = None,
    negatives: Annotated[int, Opt(help="'no' examples per pair: the data's, then mined.")] = 3,
    embedding_model: Annotated[
        str | None, Opt("--embedding-model", help="Mines negatives (hub id, path, fake); BM25 when absent.")
    ] = None,
    lora: Annotated[bool, Opt("--lora/--full", help="LoRA adapters (merged at save) or all weights.")] = True,
    seed: Annotated[int, Opt(help="Seed of the data order, LoRA initialisation and fill-in negatives.")] = 0,
    resume: Annotated[bool, Opt(help="Continue from the latest checkpoint-N in --out.")] = False,
    save_steps: Annotated[int, Opt(help="Write checkpoint-N every N steps (0: only the end).")] = 0,
    max_steps: Annotated[int | None, Opt(help="Stop after N optimizer steps.")] = None,
    instruction: Annotated[
        str, Opt(help="The reranker's instruction, as at inference.")
    ] = DEFAULT_INSTRUCTION,
    max_length: Annotated[int, Opt(help="Prompt tokens; only the document is truncated.")] = 1024,
    device: Annotated[str, Opt(help="auto | cpu | cuda | cuda:N.")] = "auto",
    precision: Annotated[str, Opt(help="auto (bf16 on a GPU that has it) | fp32 | bf16.")] = "auto",
    gradient_checkpointing: Annotated[
        bool, Opt(help="Recompute activations in backward: less memory, slower.")
    ] = False,
    progress: Annotated[
        bool, Opt("--progress/--no-progress", help="A bar on a terminal, else a line every 30 s.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a Qwen3 reranker: −log p(yes|no) of the exact inference prompt at the last position."""
    from finesift.train.reranker import Precision, RerankerTrainConfig, train_reranker

    config = RerankerTrainConfig(
        model=model, out=out, split=split, epochs=epochs, batch_size=batch_size, lr=lr, negatives=negatives,
        embedding_model=embedding_model, lora=lora, seed=seed, max_steps=max_steps, save_steps=save_steps,
        max_length=max_length, instruction=instruction, device=device, precision=cast(Precision, precision),
        gradient_checkpointing=gradient_checkpointing, resume=resume,
        progress=progress,
    )  # fmt: skip
    result = train_reranker(data, config, embedder=_miner(ctx, embedding_model), hub=settings_of(ctx).hub)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    typer.echo(
        f"trained {result.steps} steps ({result.examples} examples, {result.examples_per_s} examples/s, "
        f"{result.seconds} s); loss {result.loss_start} -> {result.loss_end}"
    )
    typer.echo(f"model: {result.out}")


def _miner(ctx: typer.Context, model: str | None) -> Embedder | None:
    """The mining embedder with the global options (--hub, --offline); None: BM25."""
    if model is None:
        return None
    from finesift.services import build_embedder

    settings = with_role(settings_of(ctx), "embedding", model=model)
    return build_embedder(settings.embedding, settings.hub)


def register(app: typer.Typer) -> None:
    """Adds ``reranker`` to the ``train`` group that :mod:`finesift.cli.train` registers."""
    train_app.command("reranker")(reranker)
