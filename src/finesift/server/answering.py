"""What the ask routes share: admission, the chat client, answers over the server's open KBs, streaming.

Knowledge bases come from the server's one :class:`~finesift.server.kb_service.KBRegistry`, as for
search: the server's models, 409 for a KB built with another embedder, 404 for one that is gone or
being dropped. Retrieval is a KB read (the registry's read threads, the request deadline, the open
included); a KB is held only while its passages are retrieved. The chat model's answer needs no KB:
it runs on ``answer.max_concurrent`` threads of its own, so neither parsing nor KB work delays it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.responses import Response, StreamingResponse

from finesift.answer.llm import ChatClient
from finesift.answer.service import Answerer, Prepared, primed
from finesift.errors import BackendError, FinesiftError, InvalidRequest, Overloaded
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.errors import classify, error_body
from finesift.server.kb_service import KBRegistry

log = logging.getLogger(__name__)
NO_LLM = (
    "this server has no chat model configured; start it with FINESIFT_LLM__URL and FINESIFT_LLM__MODEL "
    "(an OpenAI-compatible endpoint such as http://127.0.0.1:11434/v1)"
)
T = TypeVar("T")


class Answerers:
    """Answers over the KBs of one app's registry (thread-safe), at most ``answer.max_concurrent`` at once."""

    def __init__(self, kbs: KBRegistry) -> None:
        self.kbs = kbs
        self.settings = kbs.settings
        self._lock = threading.Lock()
        self._llm: ChatClient | None = None
        self._in_flight = 0
        limit = self.settings.answer.max_concurrent
        self._pool = ThreadPoolExecutor(limit, thread_name_prefix="finesift-answer")

    def acquire(self) -> None:
        """Admit one answer, or raise :class:`Overloaded` (429) when ``answer.max_concurrent`` are running."""
        limit = self.settings.answer.max_concurrent
        with self._lock:
            if self._in_flight >= limit:
                raise Overloaded(f"{limit} answers are already in progress; retry shortly")
            self._in_flight += 1

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def llm(self) -> ChatClient:
        with self._lock:
            if self._llm is None:
                try:
                    self._llm = ChatClient(self.settings.llm)
                except InvalidRequest as exc:
                    raise BackendError(NO_LLM) from exc
            return self._llm

    async def prepare(self, name: str, prepare: Callable[[Answerer], Prepared]) -> tuple[Answerer, Prepared]:
        """``prepare`` (retrieval) on an answerer over KB ``name``: a KB read, leased meanwhile."""

        def run(kb: KnowledgeBase) -> tuple[Answerer, Prepared]:
            answerer = Answerer(kb, self.llm(), self.settings)
            return answerer, prepare(answerer)

        return await self.kbs.read_kb(name, run)

    async def run(self, call: Callable[[], T]) -> T:
        """A blocking call to the chat model on the answers' own threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None


async def prepare_stream(
    answerers: Answerers, name: str, prepare: Callable[[Answerer], Prepared]
) -> tuple[Answerer, Prepared, Iterator[str]]:
    """Retrieve, then start the model's stream, so that failures to reach the model (or a bad
    question) become an HTTP error before the response starts."""
    answerer, prepared = await answerers.prepare(name, prepare)
    pieces = await answerers.run(lambda: primed(answerer.stream(prepared)))
    return answerer, prepared, pieces


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
