"""Helpers for the server tests: settings with fake models, test clients, a live uvicorn server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from finesift.embedding.embedder import Embedder
from finesift.embedding.fake import FakeEmbedder
from finesift.rerank.base import Reranker
from finesift.rerank.fake import FakeReranker
from finesift.settings import Settings
from finesift.testing.services import free_port

BASE_URL = "http://127.0.0.1"


def fake_settings(**server: Any) -> Settings:
    """Settings serving the fake models, with ``server`` overrides."""
    return Settings(embedding={"model": "fake"}, reranker={"model": "fake"}, server=server)


@dataclass
class StaticServices:
    """Already built models, for tests that need special backends."""

    embedder: Embedder
    reranker: Reranker


class SlowEmbedder(FakeEmbedder):
    """The fake embedder, taking ``delay`` seconds per model call."""

    def __init__(self, delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def embed(self, texts):  # type: ignore[no-untyped-def]
        time.sleep(self.delay)
        return super().embed(texts)


def slow_services(delay: float) -> StaticServices:
    return StaticServices(Embedder(SlowEmbedder(delay)), Reranker(FakeReranker()))


def post_json(client: Any, path: str, body: Any, **kwargs: Any) -> Any:
    """POST ``body`` as ASCII JSON (so lone surrogates travel as escapes, as in any JSON client)."""
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return client.post(path, content=json.dumps(body), headers=headers, **kwargs)


def wait_ready(app: Any, timeout: float = 90.0) -> None:
    """Wait until the app's models are loaded (without HTTP, so no key is needed).

    A tiny transformers model's warm-up compiles the fused CPU kernels: about 20 s the first time on
    a machine (an empty inductor cache, as in CI), longer on a loaded one.
    """
    deadline = time.monotonic() + timeout
    while app.state.finesift.phase != "ready":
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not become ready")
        time.sleep(0.01)


@contextmanager
def ready_client(app: Any, **kwargs: Any) -> Iterator[TestClient]:
    """A ready TestClient (lifespan run) addressed as 127.0.0.1."""
    with TestClient(app, base_url=BASE_URL, **kwargs) as client:
        wait_ready(app)
        yield client


@contextmanager
def live_server(
    app: Any, *, port: int | None = None, settings: Settings | None = None
) -> Iterator[tuple[str, Any]]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a thread; yields (base url, uvicorn server).

    With ``settings``, uvicorn is configured as ``finesift serve`` configures it (connection limits).
    """
    import uvicorn

    from finesift.server.connections import uvicorn_config

    port = port or free_port()
    if settings is not None:
        server_settings = settings.server.model_copy(update={"host": "127.0.0.1", "port": port})
        config = uvicorn_config(app, server_settings, log_level="warning")
    else:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=10
        )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_started(server)
        yield url, server
    finally:
        server.should_exit = True
        thread.join(20)


def _wait_started(server: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.01)
