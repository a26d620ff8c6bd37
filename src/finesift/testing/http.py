"""A small loopback HTTP server that speaks the documented remote protocols, with faults on demand.

It serves OpenAI ``/v1/embeddings``, Ollama ``/api/embed`` and Cohere/Jina ``/v1/rerank`` over any
embedding and rerank backend (the fakes by default), and can shuffle result order, answer 429/5xx
a given number of times, stall past a client's timeout, or refuse batches above a size. Tests of
remote clients run against it on 127.0.0.1; it binds nowhere else.

With a ``generator`` (:class:`finesift.testing.ollama.LogprobModel`) it also speaks Ollama's
``/api/generate`` (``raw``, ``num_predict: 1``, ``logprobs``/``top_logprobs`` as Ollama 0.12.11
documents them), ``/api/show`` and ``GET /api/version``; ``Faults.ollama_version`` below 0.12.11
answers like those releases, without logprobs. Ollama-side faults: a rewritten prompt (template
drift), "yes" and "no" swapped in the vocabulary, and a context cap that ignores ``num_ctx``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from finesift.embedding.fake import FakeEmbedder
from finesift.rerank.fake import FakeReranker
from finesift.rerank.prompts import DEFAULT_INSTRUCTION
from finesift.testing.loopback import LoopbackHandler, serve


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
    ollama_version: str = "0.12.11"
    rewrite_prompt: Any = None
    swap_yes_no: bool = False
    context_cap: int | None = None
    generate_delay_s: float = 0.0


@dataclass
class ServerState:
    embedder: Any = field(default_factory=FakeEmbedder)
    reranker: Any = field(default_factory=FakeReranker)
    faults: Faults = field(default_factory=Faults)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Ollama: the next-token model behind /api/generate, and the names it serves (empty: any).
    generator: Any = None
    ollama_models: tuple[str, ...] = ()
    in_flight: int = 0
    max_in_flight: int = 0


class _Handler(LoopbackHandler):
    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with state.lock:
            state.requests.append({"path": self.path, **body})
            state.headers.append(dict(self.headers.items()))
            fault = self._take_fault(state.faults)
        if fault is not None:
            return self.send_json(*fault)
        if (
            state.faults.require_key
            and self.headers.get("Authorization") != f"Bearer {state.faults.require_key}"
        ):
            return self.send_json(
                401, {"error": {"message": "invalid api key", "type": "authentication_error"}}
            )
        routes = {
            "/v1/embeddings": self._openai,
            "/api/embed": self._ollama,
            "/v1/rerank": self._rerank,
            "/api/generate": self._generate,
            "/api/show": self._show,
        }
        route = routes.get(self.path)
        if route is None:
            return self.send_json(404, {"error": {"message": f"no route {self.path}"}})
        size = len(body.get("input") or body.get("documents") or [])
        if state.faults.max_batch is not None and size > state.faults.max_batch:
            return self.send_json(
                413, {"error": {"message": f"batch size {size} > {state.faults.max_batch}"}}
            )
        if self.path in ("/api/generate", "/api/show") and not ollama_serves(state, body.get("model")):
            return self.send_json(404, {"error": f"model '{body.get('model')}' not found"})
        return self.send_json(200, route(body))

    def do_GET(self) -> None:
        if self.path != "/api/version":
            return self.send_json(404, {"error": f"no route {self.path}"})
        return self.send_json(200, {"version": self.server.state.faults.ollama_version})

    def _show(self, body: dict[str, Any]) -> dict[str, Any]:
        return ollama_show(body)

    def _generate(self, body: dict[str, Any]) -> dict[str, Any]:
        state = self.server.state
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            time.sleep(state.faults.generate_delay_s)
            return ollama_generate(state, body)
        finally:
            with state.lock:
                state.in_flight -= 1

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


def ollama_serves(state: ServerState, model: Any) -> bool:
    """Whether Ollama would know ``model``: a generator is loaded and the name is served (or any)."""
    return state.generator is not None and (not state.ollama_models or model in state.ollama_models)


def ollama_show(body: dict[str, Any]) -> dict[str, Any]:
    """What /api/show answers for a raw-prompt Qwen3 GGUF (the fields clients read)."""
    return {
        "modelfile": f"FROM {body.get('model')}\nTEMPLATE {{{{ .Prompt }}}}",
        "template": "{{ .Prompt }}",
        "details": {"format": "gguf", "family": "qwen3", "families": ["qwen3"]},
        "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960},
    }


def ollama_generate(state: ServerState, body: dict[str, Any]) -> dict[str, Any]:
    """One non-streamed /api/generate answer of ``num_predict: 1`` with Ollama's logprobs shape."""
    faults, options = state.faults, body.get("options") or {}
    prompt = str(body.get("prompt", ""))
    if faults.rewrite_prompt is not None:
        prompt = faults.rewrite_prompt(prompt)
    num_ctx = int(options.get("num_ctx") or 2048)
    if faults.context_cap is not None:
        num_ctx = min(num_ctx, faults.context_cap)
    top_n = min(int(body.get("top_logprobs") or 0), 20)
    step = state.generator.next_token(prompt, top_n=max(top_n, 1), num_ctx=num_ctx)
    swap = {"yes": "no", "no": "yes"} if faults.swap_yes_no else {}
    top = [
        {"token": swap.get(t, t), "logprob": lp, "bytes": list(swap.get(t, t).encode())} for t, lp in step.top
    ]
    out: dict[str, Any] = {
        "model": body.get("model"),
        "created_at": "2025-11-14T22:26:10.466324Z",
        "response": top[0]["token"],
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": step.prompt_tokens,
        "eval_count": 1,
    }
    if body.get("logprobs") and _has_logprobs(faults.ollama_version):
        out["logprobs"] = [{**top[0], "top_logprobs": top[:top_n]}]
    return out


def _has_logprobs(version: str) -> bool:
    parts = [int(p) for p in version.split("-")[0].split(".")[:3]]
    return parts == [0, 0, 0] or tuple(parts) >= (0, 12, 11)


@contextmanager
def protocol_server(state: ServerState | None = None) -> Iterator[tuple[str, ServerState]]:
    """Serve on 127.0.0.1 on a free port; yields ``(base_url, state)`` and stops on exit."""
    with serve(_Handler, state or ServerState()) as served:
        yield served
