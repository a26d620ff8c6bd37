"""``finesift ask``: a cited answer from a knowledge base through an OpenAI-compatible chat model."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from finesift.cli.common import settings_of, with_role
from finesift.errors import InvalidRequest
from finesift.settings import Settings

if TYPE_CHECKING:
    from finesift.answer.prompt import Citation
    from finesift.answer.service import AnswerResult

Opt = typer.Option


def _settings(
    ctx: typer.Context, llm: dict[str, Any], answer: dict[str, Any], search: dict[str, Any]
) -> Settings:
    try:
        settings = with_role(settings_of(ctx), "llm", **llm)
        settings = with_role(settings, "answer", **answer)
        return with_role(settings, "search", **search)
    except ValueError as exc:
        errors: list[Any] = getattr(exc, "errors", list)()
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors) or str(exc)
        raise InvalidRequest(f"invalid option: {detail}") from exc


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
    llm_url: Annotated[
        str | None, Opt("--llm-url", help="OpenAI-compatible base URL (env FINESIFT_LLM__URL).")
    ] = None,
    llm_model: Annotated[
        str | None, Opt("--llm-model", help="Chat model name (env FINESIFT_LLM__MODEL).")
    ] = None,
    top_k: Annotated[int | None, Opt("--top-k", "-k", help="Passages retrieved for the prompt.")] = None,
    threshold: Annotated[
        float | None, Opt(help="Refuse when the best reranker score is below this (0..1).")
    ] = None,
    mode: Annotated[str | None, Opt(help="dense | bm25 | hybrid")] = None,
    context_tokens: Annotated[int | None, Opt(help="The chat model's context window (tokens).")] = None,
    max_tokens: Annotated[int | None, Opt(help="Tokens reserved for the answer.")] = None,
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
