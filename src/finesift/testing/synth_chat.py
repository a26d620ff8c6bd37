"""A scripted OpenAI-compatible chat server on loopback that answers ``finesift synth``'s two calls.

The configuration call (its prompt lists "Candidate characters") gets the first candidate, the
type ``acquire_knowledge`` and the level ``university``. The query call gets the passage's first
words as a question, in the requested length. Markers in a passage script misbehaviour for it:

``[malformed]``  every reply is broken JSON       ``[malformed-once]``  the first reply only
``[refuse]``     every reply is a refusal           ``[offtopic]``        a query about something else
``[dup]``        the passage's first five words     ``[slow]``            the first reply stalls ``stall_s``
``[429]``        the first two requests get 429

``delay_s`` slows every request (to stop a run midway). Run it alone for a demo:
``python -m finesift.testing.synth_chat --port 8765``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from finesift.testing.loopback import LoopbackHandler, serve

_PASSAGE = re.compile(r"<passage>\n(.*?)\n</passage>", re.DOTALL)
_CANDIDATE = re.compile(r"^1\. (.+)$", re.MULTILINE)
_LENGTH = re.compile(r"length: about (\d+) words")
_MARK = re.compile(r"\[[a-z0-9-]+\]")
OFFTOPIC_QUERY = "best chocolate cake recipe with strawberries"


@dataclass
class SynthChatState:
    stall_s: float = 3.0
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    #: Requests seen per (call kind, passage), to script "the first reply only".
    seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def scripted_reply(body: dict[str, Any], seen: int) -> tuple[int, str]:
    """(HTTP status, reply text) for a request; ``seen`` counts earlier ones of the same call."""
    user = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
    found = _PASSAGE.search(user)
    passage = found.group(1) if found else ""
    if "[429]" in passage and seen < 2:
        return 429, ""
    if "[refuse]" in passage:
        return 200, "I'm sorry, but I can't help with creating that."
    if "[malformed]" in passage or ("[malformed-once]" in passage and seen == 0):
        return 200, '{"query": "unterminated'
    if "Candidate characters" in user:
        found = _CANDIDATE.search(user)
        character = found.group(1) if found else "a reader"
        return 200, json.dumps({"character": character, "question_type": "acquire_knowledge",
                                "difficulty": "university"})  # fmt: skip
    if "[offtopic]" in passage:
        return 200, json.dumps({"query": OFFTOPIC_QUERY})
    length = int(m.group(1)) if (m := _LENGTH.search(user)) else 8
    if "[dup]" in passage:
        length = 5
    text = re.sub(r"^#+\s*", "", _MARK.sub(" ", passage), flags=re.MULTILINE)
    if sum("\u4e00" <= c <= "\u9fff" for c in text) > len(text) // 5:
        query = "".join(text.split())[: 2 * max(length, 5)]  # Chinese: about two characters a word
    else:
        query = " ".join(text.split()[: max(length, 5)])
    query = query.rstrip(".,;:!?。，") + "?"
    return 200, "```json\n" + json.dumps({"query": query}, ensure_ascii=False) + "\n```"


class _Handler(LoopbackHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        user = str((body.get("messages") or [{}])[-1].get("content", ""))
        key = ("config|" if "Candidate characters" in user else "query|") + user[user.find("<passage>") :]
        with state.lock:
            state.requests.append(body)
            seen = state.seen[key]
            state.seen[key] += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._answer(state, body, user, seen)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer(self, state: SynthChatState, body: dict[str, Any], user: str, seen: int) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self.send_json(404, {"error": {"message": "no such route"}})
        stall = state.stall_s if "[slow]" in user and seen == 0 else 0.0
        time.sleep(state.delay_s + stall)
        status, text = scripted_reply(body, seen)
        if status != 200:
            return self.send_json(status, {"error": {"message": "rate limited", "type": "rate_limit"}})
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        self.send_json(200, {"id": "chatcmpl-synth", "object": "chat.completion", "choices": [choice]})


@contextmanager
def synth_chat_server(
    state: SynthChatState | None = None, port: int = 0
) -> Iterator[tuple[str, SynthChatState]]:
    """Serve on 127.0.0.1 (a free port by default); yields ``(base_url ending in /v1, state)``."""
    with serve(_Handler, state or SynthChatState(), port=port, path="/v1") as served:
        yield served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every request")
    args = parser.parse_args()
    with synth_chat_server(SynthChatState(delay_s=args.delay), args.port) as (url, _):
        print(f"scripted synth chat server on {url}", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
