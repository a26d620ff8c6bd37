"""``finesift synth``: write training queries for a KB's chunks (or a corpus) with a chat model."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from finesift.cli.common import settings_of, with_role
from finesift.cli.options import config_option, given, setting
from finesift.errors import InvalidRequest
from finesift.settings import Settings
from finesift.train.synth import SynthConfig

if TYPE_CHECKING:
    import numpy as np

    from finesift.embedding.embedder import Embedder
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.train.passages import Passage

Opt = typer.Option
#: An option whose default is the run configuration's (declared once, in SynthConfig).
_S = partial(config_option, SynthConfig)


def _settings(
    ctx: typer.Context, llm: dict[str, Any], embedding_model: str | None, *, temperature: float | None
) -> Settings:
    """The settings with the flags; the chat model samples at ``synth.temperature``, not the answers'."""
    settings = with_role(settings_of(ctx), "synth", temperature=temperature)
    settings = with_role(settings, "llm", **llm, temperature=settings.synth.temperature)
    return with_role(settings, "embedding", model=embedding_model)


def _source(
    stack: ExitStack, settings: Settings, kb: str | None, corpus: Path | None
) -> tuple[list[Passage], Embedder, dict[str, np.ndarray]]:
    """The passages, the embedder that chooses personas and filters queries, and the KB's vectors."""
    from finesift.train import passages as source

    if (kb is None) == (corpus is None):
        raise InvalidRequest("pass exactly one of --kb NAME or --corpus PATH")
    if kb is not None:
        from finesift.kb.knowledge_base import KnowledgeBase

        opened = stack.enter_context(KnowledgeBase.open(kb, settings=settings))
        return source.from_kb(opened), opened.embedder, stored_vectors(opened)
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
    return passages, embedder, {}


def stored_vectors(kb: KnowledgeBase) -> dict[str, np.ndarray]:
    """The KB's chunk vectors by passage id, when they are this embedder's full-dimension vectors.

    Opening the embedder checks its fingerprint against the KB's, so the stored vectors are the ones
    it would compute; a KB indexed at a Matryoshka dimension has shorter vectors, which are not reused.
    """
    embedder = kb.embedder  # loads the recorded model and checks the fingerprint
    if kb.manifest.dim != embedder.dimension:
        return {}
    snapshot = kb.snapshot()
    out: dict[str, np.ndarray] = {}
    for write in snapshot.export([info.doc_id for info in snapshot.documents()]):
        for chunk, vector in zip(write.chunks, write.vectors, strict=True):
            out[f"{write.info.doc_id}#{chunk.index}"] = vector
    return out


def synth(
    ctx: typer.Context,
    out: Annotated[Path, Opt("--out", help="BEIR folder to write (and resume from).")],
    kb: Annotated[str | None, Opt("--kb", help="Knowledge base whose chunks get queries.")] = None,
    corpus: Annotated[
        Path | None, Opt("--corpus", help="Instead of --kb: a BEIR folder (corpus.jsonl) or files.")
    ] = None,
    llm_url: Annotated[str | None, setting("--llm-url", path="llm.url")] = None,
    llm_model: Annotated[str | None, setting("--llm-model", path="llm.model")] = None,
    per_chunk: Annotated[int | None, _S("per_chunk", help="Queries per passage.")] = None,
    personas: Annotated[
        Path | None, Opt("--personas", help="Persona library: one per line, or JSONL with 'persona'.")
    ] = None,
    min_cosine: Annotated[
        float | None,
        _S("min_cosine", help="Keep queries at least this close to their passage (embedder-specific)."),
    ] = None,
    max_chunks: Annotated[int | None, _S("max_chunks", help="A seeded sample of N passages.")] = None,
    languages: Annotated[
        str | None, _S("languages", help="Comma-separated codes or names (en,zh); auto: the passage's.")
    ] = None,
    concurrency: Annotated[int | None, _S("concurrency", help="Chat requests in flight.")] = None,
    seed: Annotated[int | None, _S("seed", help="Sampling, lengths, languages and the dev split.")] = None,
    dev_fraction: Annotated[float | None, _S("dev_fraction", help="Share of passages in dev.")] = None,
    attempts: Annotated[
        int | None, _S("attempts", help="Tries per call for malformed or refused replies.")
    ] = None,
    temperature: Annotated[float | None, setting(path="synth.temperature")] = None,
    llm_timeout: Annotated[float | None, setting("--llm-timeout", path="llm.timeout_s")] = None,
    llm_retries: Annotated[int | None, setting("--llm-retries", path="llm.max_retries")] = None,
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
    from finesift.train.synth import synthesize

    llm = {"url": llm_url, "model": llm_model, "timeout_s": llm_timeout, "max_retries": llm_retries}
    settings = _settings(ctx, llm, embedding_model, temperature=temperature)
    config = SynthConfig(
        progress=sys.stderr.isatty() if progress is None else progress,
        **given(
            per_chunk=per_chunk, min_cosine=min_cosine, max_chunks=max_chunks, concurrency=concurrency,
            seed=seed, attempts=attempts, dev_fraction=dev_fraction,
            languages=tuple(code.strip() for code in languages.split(",")) if languages else None,
        ),
    )  # fmt: skip
    config.check()
    library = read_personas(personas) if personas is not None else bundled_personas()
    with ExitStack() as stack:
        chat = stack.enter_context(ChatClient(settings.llm))
        passages, embedder, stored = _source(stack, settings, kb, corpus)
        report = synthesize(
            passages, embedder=embedder, complete=chat.complete, personas=library, out=out, config=config,
            run_params={"llm_model": chat.model}, stored=stored,
        )  # fmt: skip
    typer.echo(json.dumps(report.to_json(), ensure_ascii=False) if as_json else report.summary())


def register(app: typer.Typer) -> None:
    app.command("synth", rich_help_panel="Training")(synth)
