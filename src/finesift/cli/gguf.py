"""``finesift gguf convert``: turn a Qwen3 checkpoint directory into a GGUF file for llama.cpp."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finesift.errors import InvalidRequest
from finesift.runtime.gguf import convert as run

gguf_app = typer.Typer(help="GGUF files for the llamacpp backend.", no_args_is_help=True)


@gguf_app.command("convert")
def convert(
    model_dir: Annotated[
        Path, typer.Argument(help="Qwen3-Embedding or Qwen3-Reranker checkpoint directory.")
    ],
    out: Annotated[Path, typer.Argument(help="The .gguf file to write.")],
    kind: Annotated[str, typer.Option(help="embedding | reranker")] = "embedding",
    file_type: Annotated[
        str, typer.Option("--type", help="f32 | f16 | bf16 | q8_0 | q5_k_m | q4_k_m")
    ] = "f16",
) -> None:
    """Convert MODEL_DIR to GGUF (embedding files append EOS and pool the last token)."""
    if kind not in ("embedding", "reranker"):
        raise InvalidRequest(f"--kind must be embedding or reranker, not {kind!r}")
    path = run(model_dir, out, kind="embedding" if kind == "embedding" else "reranker", file_type=file_type)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {file_type})")


def register(app: typer.Typer) -> None:
    app.add_typer(gguf_app, name="gguf", rich_help_panel="Models")
