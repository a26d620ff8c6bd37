"""``finesift synth``: write training queries for a KB's chunks (or a corpus) with a chat model."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from finesift.cli.common import settings_of, with_role
from finesift.errors import InvalidRequest
from finesift.settings import Settings

if TYPE_CHECKING:
    from finesift.embedding.embedder import Embedder
    from finesift.train.passages import Passage

Opt = typer.Option


def _settings(ctx: typer.Context, llm: dict[str, Any], embedding_model: str | None) -> Settings:
    try:
        settings = with_role(settings_of(ctx), "llm", **llm)
        return with_role(settings, "embedding", model=embedding_model)
    except ValueError as exc:
        errors: list[Any] = getattr(exc, "errors", list)()
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors) or str(exc)
        raise InvalidRequest(f"invalid option: {detail}") from exc


def _source(
    stack: ExitStack, settings: Settings, kb: str | None, corpus: Path | None
) -> tuple[list[Passage], Embedder]:
    """The passages and the embedder that chooses personas and filters queries."""
    from finesift.train import passages as source

    if (kb is None) == (corpus is None):
        raise InvalidRequest("pass exactly one of --kb NAME or --corpus PATH")
    if kb is not None:
        from finesift.kb.knowledge_base import KnowledgeBase

        opened = stack.enter_context(KnowledgeBase.open(kb, settings=settings))
        return source.from_kb(opened), opened.embedder
    from finesift.services import build_embedder

    assert corpus is not None
    from finesift.kb.spec import KBSpec

    embedder = build_embedder(settings.embedding, settings.hub)
    spec = KBSpec.from_settings(settings).fitted(embedder)
    assert spec.chunk_size is not None
    passages = source.from_corpus(
        corpus,
        embedder=embedder,
        chunk_size=spec.chunk_size,
        chunk_overlap=spec.chunk_overlap,
        kb=settings.kb,
    )
    return passages, embedder


def synth(
    ctx: typer.Context,
    out: Annotated[Path, Opt("--out", help="BEIR folder to write (and resume from).")],
    kb: Annotated[str | None, Opt("--kb", help="Knowledge base whose chunks get queries.")] = None,
    corpus: Annotated[
        Path | None, Opt("--corpus", help="Instead of --kb: a BEIR folder (corpus.jsonl) or files.")
    ] = None,
    llm_url: Annotated[
        str | None, Opt("--llm-url", help="OpenAI-compatible base URL (env FINESIFT_LLM__URL).")
    ] = None,
    llm_model: Annotated[
        str | None, Opt("--llm-model", help="Chat model name (env FINESIFT_LLM__MODEL).")
    ] = None,
    per_chunk: Annotated[int, Opt("--per-chunk", help="Queries per passage.")] = 1,
    personas: Annotated[
        Path | None, Opt("--personas", help="Persona library: one per line, or JSONL with 'persona'.")
    ] = None,
    min_cosine: Annotated[float, Opt("--min-cosine", help="Keep queries at least this close.")] = 0.7,
    max_chunks: Annotated[int | None, Opt("--max-chunks", help="A seeded sample of N passages.")] = None,
    languages: Annotated[
        str, Opt("--languages", help="Comma-separated codes or names (en,zh); auto: the passage's.")
    ] = "auto",
    concurrency: Annotated[int, Opt("--concurrency", help="Chat requests in flight.")] = 4,
    seed: Annotated[int, Opt("--seed", help="Sampling, lengths, languages and the dev split.")] = 0,
    dev_fraction: Annotated[float, Opt("--dev-fraction", help="Share of passages in dev.")] = 0.1,
    attempts: Annotated[int, Opt("--attempts", help="Tries per call for malformed or refused replies.")] = 3,
    temperature: Annotated[float, Opt("--temperature", help="Sampling temperature of the chat model.")] = 0.7,
    llm_timeout: Annotated[float | None, Opt("--llm-timeout", help="Seconds per request.")] = None,
    llm_retries: Annotated[int | None, Opt("--llm-retries", help="Retries on 429/5xx/timeouts.")] = None,
    embedding_model: Annotated[
        str | None,
        Opt("--embedding-model", help="With --corpus: the filtering embedder (hub id, path, fake)."),
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the report as one JSON object.")] = False,
    progress: Annotated[bool | None, Opt("--progress/--no-progress", help="Progress bar (tty).")] = None,
) -> None:
    """Write queries for passages with a chat model (persona, question type, difficulty), filter, split."""
    from finesift.answer.llm import ChatClient
    from finesift.train.personas import bundled_personas, read_personas
    from finesift.train.synth import SynthConfig, synthesize

    llm = {"url": llm_url, "model": llm_model, "timeout_s": llm_timeout, "max_retries": llm_retries}
    settings = _settings(ctx, {**llm, "temperature": temperature}, embedding_model)
    config = SynthConfig(
        per_chunk=per_chunk, min_cosine=min_cosine, max_chunks=max_chunks,
        languages=tuple(code.strip() for code in languages.split(",")), concurrency=concurrency, seed=seed,
        attempts=attempts, dev_fraction=dev_fraction,
        progress=sys.stderr.isatty() if progress is None else progress,
    )  # fmt: skip
    config.check()
    library = read_personas(personas) if personas is not None else bundled_personas()
    with ExitStack() as stack:
        chat = stack.enter_context(ChatClient(settings.llm))
        passages, embedder = _source(stack, settings, kb, corpus)
        report = synthesize(
            passages, embedder=embedder, complete=chat.complete, personas=library, out=out, config=config,
            run_params={"llm_model": chat.model},
        )  # fmt: skip
    typer.echo(json.dumps(report.to_json(), ensure_ascii=False) if as_json else report.summary())


def register(app: typer.Typer) -> None:
    app.command("synth", rich_help_panel="Training")(synth)
