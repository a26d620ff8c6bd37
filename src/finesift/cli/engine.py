"""``finesift embed`` and ``finesift rerank``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from finesift.cli.common import read_texts, settings_of, with_role, write_jsonl
from finesift.cli.options import setting
from finesift.embedding.instructions import DEFAULT_TASK, INSTRUCTIONS
from finesift.errors import InvalidRequest
from finesift.services import build_services
from finesift.settings import Dtype, OnOverflow

InstructionOpt = Annotated[
    str | None,
    typer.Option(help="Task instruction: a registered name (see `finesift instructions`) or a sentence."),
]
InputArg = Annotated[Path | None, typer.Argument(help="Input file (default: stdin); '-' is stdin.")]
FormatOpt = Annotated[str, typer.Option("--input-format", help="auto | lines | jsonl (objects with 'text').")]


def embed(
    ctx: typer.Context,
    source: InputArg = None,
    model: Annotated[str | None, setting("--model", "-m", path="embedding.model")] = None,
    query: Annotated[
        bool, typer.Option("--query/--document", help="Embed as queries (with instruction) or documents.")
    ] = False,
    instruction: InstructionOpt = None,
    dim: Annotated[int | None, typer.Option(help="Matryoshka dimension (32..hidden).")] = None,
    dtype: Annotated[Dtype | None, setting(path="embedding.dtype")] = None,
    device: Annotated[str | None, setting(path="embedding.device")] = None,
    backend: Annotated[str | None, setting(path="embedding.backend")] = None,
    max_length: Annotated[int | None, setting(path="embedding.max_length")] = None,
    gguf_type: Annotated[str | None, setting(path="embedding.gguf_type")] = None,
    on_overflow: Annotated[OnOverflow | None, setting(path="embedding.on_overflow")] = None,
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
        gguf_type=gguf_type,
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
    model: Annotated[str | None, setting("--model", "-m", path="reranker.model")] = None,
    instruction: InstructionOpt = None,
    top_n: Annotated[int | None, typer.Option(min=1, help="Write only the best N, sorted by score.")] = None,
    dtype: Annotated[Dtype | None, setting(path="reranker.dtype")] = None,
    device: Annotated[str | None, setting(path="reranker.device")] = None,
    backend: Annotated[str | None, setting(path="reranker.backend")] = None,
    max_length: Annotated[int | None, setting(path="reranker.max_length")] = None,
    gguf_type: Annotated[str | None, setting(path="reranker.gguf_type")] = None,
    url: Annotated[str | None, setting(path="reranker.url")] = None,
    max_concurrent: Annotated[int | None, setting(path="reranker.max_concurrent")] = None,
    keep_alive: Annotated[str | None, setting(path="reranker.keep_alive")] = None,
    input_format: FormatOpt = "auto",
) -> None:
    """Score documents (one per line, or JSONL) against a query; write JSONL: {"index", "line", "score"}.

    ``--backend ollama --model NAME:TAG --url URL`` scores through an Ollama server;
    ``--model ollama:NAME:TAG`` runs the GGUF that Ollama pulled in process (llama.cpp).
    """
    settings = with_role(
        settings_of(ctx),
        "reranker",
        model=model,
        dtype=dtype,
        device=device,
        backend=backend,
        max_length=max_length,
        gguf_type=gguf_type,
        url=url,
        max_concurrent=max_concurrent,
        keep_alive=keep_alive,
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
