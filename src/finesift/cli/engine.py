"""``finesift embed`` and ``finesift rerank``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from finesift.cli.common import read_texts, settings_of, with_role, write_jsonl
from finesift.embedding.instructions import DEFAULT_TASK, INSTRUCTIONS
from finesift.errors import InvalidRequest
from finesift.services import build_services

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Hub id or local directory.")]
InstructionOpt = Annotated[
    str | None,
    typer.Option(help="Task instruction: a registered name (see `finesift instructions`) or a sentence."),
]
DtypeOpt = Annotated[str | None, typer.Option(help="auto | float32 | bfloat16 | float16")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N")]
BackendOpt = Annotated[str | None, typer.Option(help="Backend name (default: auto).")]
MaxLenOpt = Annotated[int | None, typer.Option(help="Tokens per text before truncation.")]
InputArg = Annotated[Path | None, typer.Argument(help="Input file (default: stdin); '-' is stdin.")]
FormatOpt = Annotated[str, typer.Option("--input-format", help="auto | lines | jsonl (objects with 'text').")]


def embed(
    ctx: typer.Context,
    source: InputArg = None,
    model: ModelOpt = None,
    query: Annotated[
        bool, typer.Option("--query/--document", help="Embed as queries (with instruction) or documents.")
    ] = False,
    instruction: InstructionOpt = None,
    dim: Annotated[int | None, typer.Option(help="Matryoshka dimension (32..hidden).")] = None,
    dtype: DtypeOpt = None,
    device: DeviceOpt = None,
    backend: BackendOpt = None,
    max_length: MaxLenOpt = None,
    on_overflow: Annotated[str | None, typer.Option(help="truncate | error")] = None,
    input_format: FormatOpt = "auto",
) -> None:
    """Embed texts (one per line, or JSONL) and write JSONL: {"index", "line", "embedding"}."""
    settings = with_role(
        settings_of(ctx),
        "embedding",
        model=model,
        dtype=dtype,
        device=device,
        backend=backend,
        max_length=max_length,
        on_overflow=on_overflow,
    )
    items = read_texts(source, input_format)
    embedder = build_services(settings).embedder
    texts = [item.text for item in items]
    vectors = (
        embedder.embed_queries(texts, instruction=instruction, dim=dim)
        if query
        else _documents(embedder, texts, instruction, dim)
    )
    write_jsonl(
        _record(i, item, embedding=[round(float(x), 7) for x in vec])
        for i, (item, vec) in enumerate(zip(items, vectors, strict=True))
    )


def _documents(embedder: Any, texts: list[str], instruction: str | None, dim: int | None) -> Any:
    if instruction is not None:
        raise InvalidRequest(
            "--instruction applies to queries; add --query, or drop --instruction for documents"
        )
    return embedder.embed_documents(texts, dim=dim)


def rerank(
    ctx: typer.Context,
    query: Annotated[str, typer.Option("--query", "-q", help="The query to score every document against.")],
    source: InputArg = None,
    model: ModelOpt = None,
    instruction: InstructionOpt = None,
    top_n: Annotated[int | None, typer.Option(help="Write only the best N, sorted by score.")] = None,
    dtype: DtypeOpt = None,
    device: DeviceOpt = None,
    backend: BackendOpt = None,
    max_length: MaxLenOpt = None,
    input_format: FormatOpt = "auto",
) -> None:
    """Score documents (one per line, or JSONL) against a query; write JSONL: {"index", "line", "score"}."""
    settings = with_role(
        settings_of(ctx),
        "reranker",
        model=model,
        dtype=dtype,
        device=device,
        backend=backend,
        max_length=max_length,
    )
    items = read_texts(source, input_format)
    reranker = build_services(settings).reranker
    if top_n is None:
        scores = reranker.score(query, [item.text for item in items], instruction=instruction)
        write_jsonl(_record(i, item, score=s) for i, (item, s) in enumerate(zip(items, scores, strict=True)))
        return
    ranked = reranker.rerank(query, [item.text for item in items], top_n=top_n, instruction=instruction)
    write_jsonl(_record(r.index, items[r.index], score=r.score) for r in ranked)


def _record(index: int, item: Any, **value: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"index": index, "line": item.line}
    if item.id is not None:
        record["id"] = item.id
    return {**record, **value}


def instructions() -> None:
    """List the named query instructions."""
    for name, text in INSTRUCTIONS.items():
        mark = " (default)" if text == DEFAULT_TASK else ""
        typer.echo(f"{name}{mark}: {text}")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Models")(embed)
    app.command(rich_help_panel="Models")(rerank)
    app.command(rich_help_panel="Models")(instructions)
