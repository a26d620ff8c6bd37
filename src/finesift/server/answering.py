"""What the ask routes share: one :class:`Answerer` per knowledge base, and the streaming plumbing.

Knowledge bases are opened on first use and kept. When the server already serves the model a KB
records (same id and fingerprint), the KB uses the loaded model instead of loading a second copy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from finesift.answer.llm import ChatClient
from finesift.answer.service import Answerer, Prepared, primed
from finesift.errors import BackendError, Conflict, FinesiftError, InvalidRequest, Overloaded
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.errors import classify, error_body
from finesift.server.state import ServerState

log = logging.getLogger(__name__)
NO_LLM = (
    "this server has no chat model configured; start it with FINESIFT_LLM__URL and FINESIFT_LLM__MODEL "
    "(an OpenAI-compatible endpoint such as http://127.0.0.1:11434/v1)"
)


class Answerers:
    """Answerers by KB name for one app (thread-safe; KBs are opened in worker threads)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._by_name: dict[str, Answerer] = {}
        self._llm: ChatClient | None = None
        self._in_flight = 0

    def acquire(self) -> None:
        """Admit one answer, or raise :class:`Overloaded` (429) when ``answer.max_concurrent`` are running."""
        limit = self.state.settings.answer.max_concurrent
        with self._lock:
            if self._in_flight >= limit:
                raise Overloaded(f"{limit} answers are already in progress; retry shortly")
            self._in_flight += 1

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def llm(self) -> ChatClient:
        if self._llm is None:
            try:
                self._llm = ChatClient(self.state.settings.llm)
            except InvalidRequest as exc:
                raise BackendError(NO_LLM) from exc
        return self._llm

    def get(self, name: str) -> Answerer:
        """The answerer of KB ``name`` (NotFound if there is none; a dropped KB is forgotten)."""
        settings = self.state.settings
        if not KnowledgeBase.exists(name, settings=settings):
            with self._lock:
                self._by_name.pop(name, None)
            KnowledgeBase.open(name, settings=settings)  # raises the one-line NotFound
        llm = self.llm()
        with self._lock:
            answerer = self._by_name.get(name)
            if answerer is None:
                answerer = Answerer(self._open(name), llm, settings)
                self._by_name[name] = answerer
            return answerer

    def _open(self, name: str) -> Any:
        settings, state = self.state.settings, self.state
        kb = KnowledgeBase.open(name, settings=settings)
        if state.phase != "ready" or state.embeddings is None or state.rerank is None:
            return kb
        embedder, reranker = state.embeddings.embedder, state.rerank.reranker
        shared_reranker = reranker if reranker.model_id == kb.manifest.reranker_model else None
        if embedder.model_id != kb.manifest.embedding_model:
            return (
                KnowledgeBase.open(name, settings=settings, reranker=shared_reranker)
                if shared_reranker
                else kb
            )
        try:
            return KnowledgeBase.open(name, settings=settings, embedder=embedder, reranker=shared_reranker)
        except Conflict:
            return kb  # same name, other vectors: the KB loads its own recorded model

    def close(self) -> None:
        with self._lock:
            for answerer in self._by_name.values():
                answerer.kb.close()
            self._by_name.clear()
            if self._llm is not None:
                self._llm.close()
                self._llm = None


def answerers_of(app_state: Any, state: ServerState) -> Answerers:
    """The app's :class:`Answerers`, created on first use."""
    existing = getattr(app_state, "finesift_answerers", None)
    if existing is None:
        existing = Answerers(state)
        app_state.finesift_answerers = existing
    answerers: Answerers = existing
    return answerers


async def prepare_stream(
    answerer: Answerer, prepare: Callable[[], Prepared]
) -> tuple[Prepared, Iterator[str]]:
    """Retrieve and start the model's stream in a worker thread, so that failures to reach the
    model (or a bad question) become an HTTP error before the response starts."""

    def run() -> tuple[Prepared, Iterator[str]]:
        prepared = prepare()
        return prepared, primed(answerer.stream(prepared))

    return await asyncio.to_thread(run)


async def admitted(answerers: Answerers, handler: Callable[[], Awaitable[Response]]) -> Response:
    """Run ``handler`` in one of ``answer.max_concurrent`` slots (429 beyond); a stream holds its slot
    until it ends or its client goes away."""
    answerers.acquire()
    try:
        response = await handler()
    except BaseException:
        answerers.release()
        raise
    if isinstance(response, StreamingResponse):
        response.body_iterator = _release_at_end(response.body_iterator, answerers.release)
    else:
        answerers.release()
    return response


async def _release_at_end(body: AsyncIterable[Any], release: Callable[[], None]) -> AsyncIterator[Any]:
    try:
        async for chunk in body:
            yield chunk
    finally:
        release()


def sse(payload: Any) -> bytes:
    """One server-sent event carrying ``payload`` as JSON (or the literal ``[DONE]``)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def error_event(exc: FinesiftError) -> dict[str, Any]:
    """The OpenAI-shaped error body for a failure after the stream began."""
    _, kind, code = classify(exc)
    log.warning("answer stream failed: %s", exc)
    return error_body(str(exc), type=kind, code=code)


def relay(pieces: Iterator[str], on_piece: Callable[[str], bytes], sink: list[str]) -> Iterator[bytes]:
    """Events for each piece (text collected in ``sink``); a failure mid-stream becomes an error event."""
    try:
        for piece in pieces:
            sink.append(piece)
            yield on_piece(piece)
    except FinesiftError as exc:
        yield sse(error_event(exc))
        raise _Stopped from exc


class _Stopped(Exception):
    """The stream ended with an error event; the caller ends it with ``[DONE]``."""


def events(
    pieces: Iterator[str], on_piece: Callable[[str], bytes], tail: Callable[[str], list[bytes]]
) -> Iterator[bytes]:
    """The whole event stream: pieces, then ``tail(full_text)`` events, then ``[DONE]``."""
    sink: list[str] = []
    try:
        yield from relay(pieces, on_piece, sink)
        yield from tail("".join(sink))
    except _Stopped:
        pass
    yield sse("[DONE]")
