"""``finesift ask``: a cited answer from a knowledge base through an OpenAI-compatible chat model."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from finesift.cli.common import settings_of, with_role
from finesift.cli.options import setting
from finesift.settings import SearchMode, Settings

if TYPE_CHECKING:
    from finesift.answer.prompt import Citation
    from finesift.answer.service import AnswerResult

Opt = typer.Option


def _settings(
    ctx: typer.Context, llm: dict[str, Any], answer: dict[str, Any], search: dict[str, Any]
) -> Settings:
    settings = with_role(settings_of(ctx), "llm", **llm)
    settings = with_role(settings, "answer", **answer)
    return with_role(settings, "search", **search)


def print_citations(citations: list[Citation]) -> None:
    """The passages the model was given, numbered as in the answer."""
    if not citations:
        return
    typer.echo("\nSources:")
    for c in citations:
        page = f" p.{c.page}" if c.page is not None else ""
        mark = "" if c.cited else "  (not cited)"
        typer.echo(f"[{c.number}] {c.score:.4f}  {c.source}{page} [{c.start}:{c.end}]  doc {c.doc_id}{mark}")
        excerpt = " ".join(c.text.split())
        typer.echo(f"    {excerpt[:240]}{'…' if len(excerpt) > 240 else ''}")


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question.", show_default=False)],
    kb: Annotated[str, Opt("--kb", help="Knowledge base to answer from.")],
    llm_url: Annotated[str | None, setting("--llm-url", path="llm.url")] = None,
    llm_model: Annotated[str | None, setting("--llm-model", path="llm.model")] = None,
    top_k: Annotated[int | None, setting("--top-k", "-k", path="answer.top_k")] = None,
    threshold: Annotated[float | None, setting(path="answer.threshold")] = None,
    mode: Annotated[SearchMode | None, setting(path="search.mode")] = None,
    context_tokens: Annotated[int | None, setting(path="llm.context_tokens")] = None,
    max_tokens: Annotated[int | None, setting(path="llm.max_tokens")] = None,
    stream: Annotated[bool, Opt("--stream/--no-stream", help="Print the answer as it is written.")] = True,
    as_json: Annotated[bool, Opt("--json", help="Print {answer, citations, refused} as JSON.")] = False,
) -> None:
    """Answer a question from a knowledge base, with numbered citations; then print the passages.

    The API key, if the endpoint needs one, is read from FINESIFT_LLM__API_KEY.
    """
    from finesift.answer.llm import ChatClient
    from finesift.answer.service import Answerer
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.retrieval.pipeline import validate_query

    validate_query(question)
    llm = {"url": llm_url, "model": llm_model, "context_tokens": context_tokens, "max_tokens": max_tokens}
    settings = _settings(ctx, llm, {"top_k": top_k, "threshold": threshold}, {"mode": mode})
    with ChatClient(settings.llm) as client, KnowledgeBase.open(kb, settings=settings) as base:
        answerer = Answerer(base, client, settings)
        prepared = answerer.prepare(question)
        if as_json or not stream:
            result = answerer.complete(prepared)
        else:
            pieces = []
            for piece in answerer.stream(prepared):
                pieces.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            result = answerer.finish(prepared, "".join(pieces))
    _show(result, printed=stream and not as_json, as_json=as_json)


def _show(result: AnswerResult, *, printed: bool, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    if not printed:
        typer.echo(result.answer)
    print_citations(result.citations)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Knowledge base")(ask)
