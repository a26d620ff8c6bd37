"""A small loopback HTTP server that speaks the documented remote protocols, with faults on demand.

It serves OpenAI ``/v1/embeddings``, Ollama ``/api/embed`` and Cohere/Jina ``/v1/rerank`` over any
embedding and rerank backend (the fakes by default), and can shuffle result order, answer 429/5xx
a given number of times, stall past a client's timeout, or refuse batches above a size. Tests of
remote clients run against it on 127.0.0.1; it binds nowhere else.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from finesift.embedding.fake import FakeEmbedder
from finesift.rerank.fake import FakeReranker
from finesift.rerank.prompts import DEFAULT_INSTRUCTION


@dataclass
class Faults:
    """What the server does wrong: each counter is consumed by the next requests."""

    fail_status: int = 503
    failures: int = 0
    stall_s: float = 0.0
    stalls: int = 0
    shuffle: bool = False
    max_batch: int | None = None
    require_key: str | None = None


@dataclass
class ServerState:
    embedder: Any = field(default_factory=FakeEmbedder)
    reranker: Any = field(default_factory=FakeReranker)
    faults: Faults = field(default_factory=Faults)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``state.requests`` instead."""

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with state.lock:
            state.requests.append({"path": self.path, **body})
            state.headers.append(dict(self.headers.items()))
            fault = self._take_fault(state.faults)
        if fault is not None:
            return self._reply(*fault)
        if (
            state.faults.require_key
            and self.headers.get("Authorization") != f"Bearer {state.faults.require_key}"
        ):
            return self._reply(401, {"error": {"message": "invalid api key", "type": "authentication_error"}})
        routes = {"/v1/embeddings": self._openai, "/api/embed": self._ollama, "/v1/rerank": self._rerank}
        route = routes.get(self.path)
        if route is None:
            return self._reply(404, {"error": {"message": f"no route {self.path}"}})
        size = len(body.get("input") or body.get("documents") or [])
        if state.faults.max_batch is not None and size > state.faults.max_batch:
            return self._reply(413, {"error": {"message": f"batch size {size} > {state.faults.max_batch}"}})
        return self._reply(200, route(body))

    def _take_fault(self, faults: Faults) -> tuple[int, dict[str, Any]] | None:
        if faults.stalls > 0:
            faults.stalls -= 1
            time.sleep(faults.stall_s)
        if faults.failures > 0:
            faults.failures -= 1
            return faults.fail_status, {"error": {"message": "busy, try again"}}
        return None

    def _order(self, n: int) -> list[int]:
        order = list(range(n))
        if self.server.state.faults.shuffle:
            random.Random(n).shuffle(order)
            order.reverse()
        return order

    def _openai(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        out = self.server.state.embedder.embed(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": out.vectors[i].tolist()}
            for i in self._order(len(texts))
        ]
        usage = {"prompt_tokens": sum(out.tokens), "total_tokens": sum(out.tokens)}
        return {"object": "list", "model": body.get("model"), "data": data, "usage": usage}

    def _ollama(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        out = self.server.state.embedder.embed(texts)
        return {
            "model": body.get("model"),
            "embeddings": out.vectors.tolist(),
            "prompt_eval_count": sum(out.tokens),
        }

    def _rerank(self, body: dict[str, Any]) -> dict[str, Any]:
        docs = body["documents"]
        instruction = body.get("instruction") or DEFAULT_INSTRUCTION
        out = self.server.state.reranker.score(body["query"], docs, instruction=instruction)
        results = [{"index": i, "relevance_score": out.scores[i]} for i in self._order(len(docs))]
        return {"results": results, "usage": {"total_tokens": sum(out.tokens)}}

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


@contextmanager
def protocol_server(state: ServerState | None = None) -> Iterator[tuple[str, ServerState]]:
    """Serve on 127.0.0.1 on a free port; yields ``(base_url, state)`` and stops on exit."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = state or ServerState()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
