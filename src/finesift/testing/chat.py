"""A small deterministic OpenAI-compatible chat server on loopback, for tests of the answer step.

``POST /v1/chat/completions`` answers from the ``<passage>`` elements of the last user message: it
quotes the first sentence of passage 1 and cites ``[1]`` (and ``[2]`` when there is a second
passage), or says it cannot answer when there are none. With ``"stream": true`` it sends the answer
word by word as server-sent events. Faults on demand: HTTP errors, a stall, a body that is not JSON,
JSON without ``choices``, a stream cut mid-answer, and a ``<think>`` block before the answer
(as Qwen3 writes).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from finesift.testing.loopback import LoopbackHandler, serve

_PASSAGE = re.compile(r'<passage id="(\d+)"[^>]*>\n(.*?)\n</passage>', re.DOTALL)
_SENTENCE = re.compile(r"^.*?(?:[。！？]|[.!?](?=\s|$)|$)", re.DOTALL)
NO_ANSWER = "The knowledge base does not answer this question."


@dataclass
class ChatFaults:
    """Misbehaviour: counters are consumed by the next requests; flags stay on."""

    fail_status: int = 503
    failures: int = 0
    stall_s: float = 0.0
    stalls: int = 0
    garbage: bool = False
    no_choices: bool = False
    think: bool = False
    cut_after: int | None = None
    #: When set, a stream pauses after its first piece until the event is set (or 10 s pass): a
    #: client that sees the first piece during the pause proves the answer really streams.
    hold: threading.Event | None = None
    hold_expired: bool = False


@dataclass
class ChatState:
    faults: ChatFaults = field(default_factory=ChatFaults)
    #: When set, every answer is this text (e.g. one citing only ``[2]``) instead of the deterministic one.
    reply: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def deterministic_answer(messages: list[dict[str, Any]]) -> str:
    """The reply to ``messages``: first sentence of passage 1 with its citation(s)."""
    users = [m for m in messages if m.get("role") == "user"]
    passages = _PASSAGE.findall(str(users[-1].get("content", ""))) if users else []
    if not passages:
        return NO_ANSWER
    first = " ".join(passages[0][1].split())
    match = _SENTENCE.match(first)
    sentence = (match.group(0) if match else first)[:200]
    refs = "".join(f"[{n}]" for n, _ in passages[:2])
    return f"{sentence} {refs}"


class _Handler(LoopbackHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with state.lock:
            state.requests.append(body)
            faults = state.faults
            stall = faults.stall_s if faults.stalls > 0 else 0.0
            faults.stalls = max(faults.stalls - 1, 0)
            fail = faults.failures > 0
            faults.failures = max(faults.failures - 1, 0)
        if stall:
            time.sleep(stall)
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self.send_bytes(404, b'{"error": {"message": "no such route"}}')
        if fail:
            return self.send_bytes(faults.fail_status, b'{"error": {"message": "busy"}}')
        if faults.garbage:
            return self.send_bytes(200, b"<html>gateway says hello</html>", "text/html")
        if faults.no_choices:
            return self.send_bytes(200, b'{"object": "chat.completion", "result": "hi"}')
        text = state.reply or deterministic_answer(body.get("messages") or [])
        if faults.think:
            text = "<think>\nThe user wants a cited answer.\n</think>\n\n" + text
        if body.get("stream"):
            return self._stream(body, text)
        return self.send_bytes(200, json.dumps(_completion(body, text)).encode())

    def _stream(self, body: dict[str, Any], text: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        pieces = re.findall(r"\S+\s*|\s+", text)
        cut = self.server.state.faults.cut_after
        try:
            for n, piece in enumerate(pieces):
                if cut is not None and n == cut:
                    self.close_connection = True
                    return  # the connection drops mid-answer
                if n == 1:
                    self._hold()
                self._event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _hold(self) -> None:
        faults = self.server.state.faults
        if faults.hold is not None and not faults.hold.wait(10):
            faults.hold_expired = True

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(
            b"data: " + json.dumps({"object": "chat.completion.chunk", **payload}).encode() + b"\n\n"
        )
        self.wfile.flush()


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": len(text.split()), "total_tokens": 1},
    }


@contextmanager
def chat_server(state: ChatState | None = None) -> Iterator[tuple[str, ChatState]]:
    """Serve on 127.0.0.1 on a free port; yields ``(base_url ending in /v1, state)``."""
    with serve(_Handler, state or ChatState(), path="/v1") as served:
        yield served
