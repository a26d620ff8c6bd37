"""An OpenAI-compatible chat client (Ollama, vLLM, llama-server, hosted APIs): whole or streamed answers.

It reuses the remote backends' :class:`~finesift.runtime.http.HttpClient` (timeouts, retries with
backoff, one-line errors). Answers that are not what the protocol promises (no ``choices``, events
that are not JSON, an empty answer) raise :class:`BackendError` naming the endpoint. Reasoning
models' ``<think>…</think>`` blocks are removed from what the user sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from finesift.errors import BackendError, InvalidRequest
from finesift.runtime.http import HttpClient, RetryPolicy, endpoint_url
from finesift.settings import LLMSettings

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SSE_FIELDS = frozenset({"event", "id", "retry"})


class ThinkFilter:
    """Removes ``<think>…</think>`` from text that arrives in pieces (tags may be split across pieces)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._thinking = False
        self._started = False

    def feed(self, piece: str) -> str:
        """The visible part of everything fed so far that can be released now."""
        self._buffer += piece
        out = []
        while self._buffer:
            tag = THINK_CLOSE if self._thinking else THINK_OPEN
            at = self._buffer.find(tag)
            if at >= 0:
                if not self._thinking:
                    out.append(self._buffer[:at])
                self._buffer = self._buffer[at + len(tag) :]
                self._thinking = not self._thinking
                continue
            keep = _partial_suffix(self._buffer, tag)
            if not self._thinking:
                out.append(self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep :]
            break
        text = "".join(out)
        if not self._started:
            # The text after a leading think block starts with blank lines; drop them once.
            text = text.lstrip()
            self._started = bool(text)
        return text

    def flush(self) -> str:
        """What is left at the end (a dangling partial tag is ordinary text)."""
        rest, self._buffer = ("" if self._thinking else self._buffer), ""
        return rest


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ChatClient:
    """``POST {url}/chat/completions`` with the configured model; ``complete`` or ``stream`` an answer."""

    def __init__(self, settings: LLMSettings, *, client: HttpClient | None = None) -> None:
        if not settings.url or not settings.model:
            raise InvalidRequest(
                "no chat model configured: pass --llm-url and --llm-model "
                "(or set FINESIFT_LLM__URL and FINESIFT_LLM__MODEL)"
            )
        self.settings = settings
        self.model = settings.model
        self.url = endpoint_url(settings.url, "/v1/chat/completions")
        self.client = client or HttpClient(
            api_key=settings.api_key,
            timeout_s=settings.timeout_s,
            retry=RetryPolicy(max_retries=settings.max_retries),
            extra="openai",
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _payload(self, messages: list[dict[str, str]], *, stream: bool) -> dict[str, Any]:
        s = self.settings
        return {
            "model": self.model,
            "messages": messages,
            "stream": stream,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
        }

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The whole answer, think blocks removed."""
        try:
            body = self.client.post_json(self.url, self._payload(messages, stream=False))
        except BackendError as exc:
            raise _unavailable(exc) from exc
        return self._visible(self._message_text(body))

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The answer in pieces as the model writes them, think blocks removed; never yields ''."""
        think = ThinkFilter()
        produced = False
        lines = self.client.stream_lines(self.url, self._payload(messages, stream=True))
        for piece in self._pieces(_guarded(lines)):
            visible = think.feed(piece)
            if visible:
                produced = True
                yield visible
        rest = think.flush()
        if rest:
            produced = True
            yield rest
        if not produced:
            raise BackendError(f"{self.url} (model {self.model!r}) returned an empty answer")

    def _visible(self, text: str) -> str:
        think = ThinkFilter()
        visible = (think.feed(text) + think.flush()).strip()
        if not visible:
            raise BackendError(f"{self.url} (model {self.model!r}) returned an empty answer")
        return visible

    def _pieces(self, lines: Iterator[str]) -> Iterator[str]:
        """Content deltas from server-sent events; a plain JSON body (stream ignored) is accepted too.

        A stream that stops without ``[DONE]`` or a ``finish_reason`` is an error: the answer is cut.
        """
        finished = False
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("{"):
                # The endpoint ignored "stream": the whole answer came as one JSON document.
                yield self._message_text(self._json(stripped + "".join(lines)))
                return
            data = self._data(stripped)
            if data == "[DONE]":
                return
            if data is None:
                continue
            event = self._json(data)
            if isinstance(event, dict) and "error" in event:
                raise BackendError(f"{self.url} reported an error mid-answer: {_error_text(event)}")
            finished = finished or self._choice(event).get("finish_reason") is not None
            yield self._delta_text(event)
        if not finished:
            raise BackendError(
                f"{self.url} ended its stream before the answer was complete (no [DONE]); "
                "the answer is cut off; see the chat server's log"
            )

    def _data(self, line: str) -> str | None:
        """The payload of a ``data:`` line; None for blank lines, comments and other SSE fields."""
        if line.startswith("data:"):
            return line[5:].strip()
        if not line or line.startswith(":") or line.split(":", 1)[0] in SSE_FIELDS:
            return None
        raise BackendError(
            f"{self.url} answered with something that is not an event stream ({line[:80]!r}); "
            "is it an OpenAI-compatible chat endpoint?"
        )

    def _json(self, data: str) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BackendError(
                f"{self.url} sent an answer that is not JSON ({data[:80]!r}); "
                "is it an OpenAI-compatible chat endpoint?"
            ) from exc

    def _choice(self, body: Any) -> dict[str, Any]:
        choices = body.get("choices") if isinstance(body, dict) else None
        if isinstance(body, dict) and "error" in body:
            raise BackendError(f"{self.url} reported an error: {_error_text(body)}")
        if not isinstance(choices, list):
            raise BackendError(
                f"{self.url} answered without 'choices'; is it an OpenAI-compatible chat endpoint?"
            )
        if not choices:
            return {}
        if not isinstance(choices[0], dict):
            raise BackendError(f"{self.url} answered with a malformed choice")
        return choices[0]

    def _message_text(self, body: Any) -> str:
        message = self._choice(body).get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise BackendError(f"{self.url} answered without message content (model {self.model!r})")
        return content

    def _delta_text(self, event: Any) -> str:
        delta = self._choice(event).get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if content is not None and not isinstance(content, str):
            raise BackendError(f"{self.url} streamed a delta whose content is not text")
        return content or ""


def _unavailable(exc: BackendError) -> BackendError:
    """The transport's error, saying which settings reach the chat model."""
    return BackendError(
        f"cannot get an answer from the chat model: {exc} "
        "(settings: --llm-url, FINESIFT_LLM__TIMEOUT_S, FINESIFT_LLM__MAX_RETRIES)"
    )


def _guarded(lines: Iterator[str]) -> Iterator[str]:
    try:
        yield from lines
    except BackendError as exc:
        raise _unavailable(exc) from exc


def _error_text(body: dict[str, Any]) -> str:
    err = body.get("error")
    if isinstance(err, dict):
        err = err.get("message", err)
    return " ".join(str(err).split())[:300]
