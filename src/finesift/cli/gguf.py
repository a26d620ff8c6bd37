"""``finesift gguf``: convert a Qwen3 checkpoint to GGUF (with an Ollama Modelfile), and the
quantization report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from finesift.errors import InvalidRequest
from finesift.rerank.modelfile import write_modelfile
from finesift.runtime.gguf import FILE_TYPES
from finesift.runtime.gguf import convert as run

gguf_app = typer.Typer(help="GGUF files for the llamacpp backend and Ollama.", no_args_is_help=True)


@gguf_app.command("convert")
def convert(
    model_dir: Annotated[
        Path, typer.Argument(help="Qwen3-Embedding or Qwen3-Reranker checkpoint directory.")
    ],
    out: Annotated[Path, typer.Argument(help="The .gguf file to write.")],
    kind: Annotated[str, typer.Option(help="embedding | reranker")] = "embedding",
    file_type: Annotated[
        str,
        typer.Option(
            "--type",
            help=f"{' | '.join(FILE_TYPES)}. f32/f16/bf16/q8_0 need only the gguf extra; "
            "the others run llama.cpp's quantizer (the llamacpp extra).",
        ),
    ] = "f16",
    modelfile: Annotated[
        bool, typer.Option("--modelfile/--no-modelfile", help="Write OUT's Ollama Modelfile beside it.")
    ] = True,
) -> None:
    """Convert MODEL_DIR to GGUF (embedding files append EOS and pool the last token).

    Beside OUT goes OUT's Modelfile; `ollama create NAME -f OUT.Modelfile` then serves it.
    """
    if kind not in ("embedding", "reranker"):
        raise InvalidRequest(f"--kind must be embedding or reranker, not {kind!r}")
    role = "embedding" if kind == "embedding" else "reranker"
    began = time.perf_counter()
    path = run(model_dir, out, kind=role, file_type=file_type)
    seconds = time.perf_counter() - began
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {file_type}, {seconds:.1f} s)")
    if modelfile:
        written = write_modelfile(path, kind=role)
        typer.echo(f"wrote {written}; load it into Ollama with: ollama create NAME -f {written}")


def register(app: typer.Typer) -> None:
    app.add_typer(gguf_app, name="gguf", rich_help_panel="Models")
