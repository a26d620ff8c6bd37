"""``finesift train reranker``: yes/no SFT of a Qwen3 reranker on pairs, negatives mined from the corpus."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from finesift.cli.common import settings_of, with_role
from finesift.cli.options import config_option, given
from finesift.cli.train import DevFractionOpt, DevOpt, DevSplitOpt, JsonOpt, echo_result, train_app
from finesift.train.config import Precision
from finesift.train.reranker import RerankerTrainConfig

if TYPE_CHECKING:
    from finesift.embedding.embedder import Embedder

Opt = typer.Option
#: An option whose default is the run configuration's (declared once, in RerankerTrainConfig).
_R = partial(config_option, RerankerTrainConfig)


def reranker(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="BEIR folder or JSONL of {query, positive, negatives?}.")],
    model: Annotated[str, Opt(help="Base reranker: a local directory or hub id (Qwen3ForCausalLM).")],
    out: Annotated[Path, Opt(help="Output directory (final model + checkpoint-N).")],
    split: Annotated[str | None, _R("split", help="qrels/<split>.tsv of a BEIR folder.")] = None,
    epochs: Annotated[int | None, _R("epochs", help="Passes over the examples.")] = None,
    batch_size: Annotated[
        int | None,
        _R("batch_size", help="Examples (query, document, label) per step, all processes together."),
    ] = None,
    lr: Annotated[float | None, _R("lr", help="Learning rate (1e-4 LoRA, 1e-5 full).")] = None,
    negatives: Annotated[
        int | None, _R("negatives", help="'no' examples per pair: the data's, then mined.")
    ] = None,
    embedding_model: Annotated[
        str | None, Opt("--embedding-model", help="Mines negatives (hub id, path, fake); BM25 when absent.")
    ] = None,
    lora: Annotated[
        bool | None, _R("lora", "--lora/--full", help="LoRA adapters (merged at save) or all weights.")
    ] = None,
    seed: Annotated[
        int | None, _R("seed", help="Seed of the data order, LoRA initialisation and fill-in negatives.")
    ] = None,
    resume: Annotated[
        bool | None, _R("resume", help="Continue from the latest checkpoint-N in --out.")
    ] = None,
    save_steps: Annotated[
        int | None, _R("save_steps", help="Write checkpoint-N every N steps (0: only the end).")
    ] = None,
    max_steps: Annotated[int | None, _R("max_steps", help="Stop after N optimizer steps.")] = None,
    instruction: Annotated[
        str | None, _R("instruction", help="The reranker's instruction, as at inference.")
    ] = None,
    max_length: Annotated[
        int | None, _R("max_length", help="Prompt tokens; only the document is truncated.")
    ] = None,
    device: Annotated[str | None, _R("device", help="auto | cpu | cuda | cuda:N.")] = None,
    precision: Annotated[Precision | None, _R("precision", help="auto: bf16 on a GPU that has it.")] = None,
    gradient_checkpointing: Annotated[
        bool | None,
        _R("gradient_checkpointing", help="Recompute activations in backward: less memory, slower."),
    ] = None,
    progress: Annotated[
        bool | None,
        _R("progress", "--progress/--no-progress", help="A bar on a terminal, else a line every 30 s."),
    ] = None,
    dev: DevOpt = None,
    dev_split: DevSplitOpt = "dev",
    dev_fraction: DevFractionOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a Qwen3 reranker: −log p(yes|no) of the exact inference prompt at the last position."""
    from finesift.train.heldout import DevSpec
    from finesift.train.measured import train_reranker_measured

    config = RerankerTrainConfig(
        model=model, out=out, embedding_model=embedding_model,
        **given(
            split=split, epochs=epochs, batch_size=batch_size, lr=lr, negatives=negatives, lora=lora,
            seed=seed, max_steps=max_steps, save_steps=save_steps, max_length=max_length,
            instruction=instruction, device=device, precision=precision,
            gradient_checkpointing=gradient_checkpointing, resume=resume, progress=progress,
        ),
    )  # fmt: skip
    spec = DevSpec(path=dev, split=dev_split, fraction=dev_fraction)
    result = train_reranker_measured(
        data, config, spec, embedder=_miner(ctx, embedding_model), hub=settings_of(ctx).hub
    )
    echo_result(result, as_json=as_json)


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
