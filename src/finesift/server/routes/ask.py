"""``POST /v1/kbs/{kb}/ask`` (cited answers, JSON or SSE) and ``POST /v1/chat/completions`` (a KB as a model).

SSE of ``/ask``: ``data: {"delta": "..."}`` events, then ``data: {"citations": [...], "refused": bool}``,
then ``data: [DONE]``. A failure after the stream began is sent as ``data: {"error": {...}}`` followed
by ``data: [DONE]``; failures before it are ordinary HTTP errors.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from finesift.answer.prompt import Citation, estimate_tokens
from finesift.answer.service import Answerer, AnswerResult, citation_dict
from finesift.errors import InvalidRequest
from finesift.server.answering import Answerers, admitted, events, prepare_stream, sse
from finesift.server.routes.common import MODEL_ERRORS
from finesift.server.schemas import Text, check_text


def get_answerers(request: Request) -> Answerers:
    answerers: Answerers = request.app.state.finesift_answerers
    return answerers


router = APIRouter(tags=["answer"])
AnswerersDep = Annotated[Answerers, Depends(get_answerers)]
KBName = Annotated[str, Path(description="Knowledge base name", max_length=64)]
ERRORS = {
    **MODEL_ERRORS,
    502: MODEL_ERRORS[422] | {"description": "The chat model failed or is not configured"},
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("the query is blank; pass the question")
    return text


class AskRequest(BaseModel):
    """A question for one knowledge base."""

    model_config = ConfigDict(extra="forbid")
    query: Annotated[Text, AfterValidator(_not_blank)] = Field(min_length=1, max_length=8192)
    stream: bool = False
    top_k: int | None = Field(default=None, ge=1, le=100, description="passages retrieved for the prompt")
    threshold: float | None = Field(default=None, ge=0, le=1, description="refuse below this reranker score")
    mode: Literal["dense", "bm25", "hybrid"] | None = None


class AskResponse(BaseModel):
    answer: str
    citations: list[dict[str, Any]]
    refused: bool


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _valid_text(cls, content: str | list[dict[str, Any]] | None) -> Any:
        """Refuse NUL and lone surrogates in the text, as every other text field does (422)."""
        parts = content if isinstance(content, list) else [{"text": content}]
        for part in parts:
            text = part.get("text")
            if isinstance(text, str):
                check_text(text)
        return content


class ChatRequest(BaseModel):
    """OpenAI chat completions; ``model`` names the knowledge base. Other OpenAI fields are ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=64)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False


@router.post("/v1/kbs/{kb}/ask", response_model=AskResponse, responses=ERRORS)
async def ask(kb: KBName, body: AskRequest, answerers: AnswerersDep) -> Any:
    """Answer `query` from the knowledge base with numbered citations; SSE when `stream` is true."""
    return await admitted(answerers, lambda: _ask(answerers, kb, body))


async def _ask(answerers: Answerers, kb: str, body: AskRequest) -> Response:
    def prepare(answerer: Answerer) -> Any:
        return answerer.prepare(body.query, top_k=body.top_k, threshold=body.threshold, mode=body.mode)

    if not body.stream:
        answerer, prepared = await answerers.prepare(kb, prepare)
        result = await answerers.run(lambda: answerer.complete(prepared))
        return JSONResponse(result.to_dict())
    answerer, prepared, pieces = await prepare_stream(answerers, kb, prepare)

    def tail(text: str) -> list[bytes]:
        result = answerer.finish(prepared, text)
        return [sse({"citations": [citation_dict(c) for c in result.citations], "refused": result.refused})]

    stream = events(pieces, lambda piece: sse({"delta": piece}), tail)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, list):
        return "".join(str(p.get("text", "")) for p in message.content if p.get("type") == "text")
    return message.content or ""


def _split(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]], str | None]:
    """(question, earlier turns, the client's system text) from an OpenAI message list."""
    if messages[-1].role != "user" or not _text(messages[-1]).strip():
        raise InvalidRequest("messages: the last message must be a user message with text (the question)")
    history = [
        {"role": m.role, "content": _text(m)}
        for m in messages[:-1]
        if m.role in ("user", "assistant") and _text(m)
    ]
    system = "\n".join(_text(m) for m in messages if m.role in ("system", "developer") and _text(m))
    return _text(messages[-1]), history, system or None


def sources_text(citations: list[Citation]) -> str:
    """The cited passages as a list appended to the answer, so chat front ends show where it comes from."""
    shown = [c for c in citations if c.cited] or citations
    if not shown:
        return ""
    lines = [
        f"[{c.number}] {c.source}{f' p.{c.page}' if c.page is not None else ''} [{c.start}:{c.end}]"
        for c in shown
    ]
    return "\n\nSources:\n" + "\n".join(lines)


def _chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return sse({**base, "object": "chat.completion.chunk", "choices": [choice], **extra})


@router.post("/v1/chat/completions", responses=ERRORS)
async def chat_completions(body: ChatRequest, answerers: AnswerersDep) -> Any:
    """OpenAI chat completions over a knowledge base: `model` is the KB's name; the answer cites passages
    and ends with its sources; `citations` and `refused` are added to the response (and the last chunk)."""
    return await admitted(answerers, lambda: _chat(answerers, body))


async def _chat(answerers: Answerers, body: ChatRequest) -> Response:
    question, history, system = _split(body.messages)

    def prepare(answerer: Answerer) -> Any:
        return answerer.prepare(question, history=history, system=system)

    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": body.model}
    if not body.stream:
        answerer, prepared = await answerers.prepare(body.model, prepare)
        result = await answerers.run(lambda: answerer.complete(prepared))
        return JSONResponse(_completion(base, result, answerer, prepared))
    answerer, prepared, pieces = await prepare_stream(answerers, body.model, prepare)

    def tail(text: str) -> list[bytes]:
        result = answerer.finish(prepared, text)
        sources = sources_text(result.citations)
        out = [_chunk(base, {"content": sources})] if sources else []
        cites = [citation_dict(c) for c in result.citations]
        return [*out, _chunk(base, {}, "stop", citations=cites, refused=result.refused)]

    first = _chunk(base, {"role": "assistant", "content": ""})
    stream = events(pieces, lambda piece: _chunk(base, {"content": piece}), tail)
    return StreamingResponse(_prefixed(first, stream), media_type="text/event-stream", headers=SSE_HEADERS)


def _prefixed(first: bytes, rest: Any) -> Any:
    yield first
    yield from rest


def _completion(
    base: dict[str, Any], result: AnswerResult, answerer: Answerer, prepared: Any
) -> dict[str, Any]:
    content = result.answer + sources_text(result.citations)
    prompt_tokens = prepared.prompt.tokens if prepared.prompt is not None else 0
    completion_tokens = estimate_tokens([result.answer])[0]
    return {
        **base,
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "citations": [citation_dict(c) for c in result.citations],
        "refused": result.refused,
    }
