"""One registry of open KBs per server: search, ask and chat share it, and a drop reaches all of them.

Fake models, the loopback chat server of :mod:`finesift.testing.chat`, the app over ASGI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from server_support import StaticServices, post_json, ready_client

from finesift import load_embedder
from finesift.embedding.base import EmbeddingOutput
from finesift.embedding.embedder import Embedder
from finesift.embedding.fake import FakeEmbedder
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.rerank.base import Reranker
from finesift.rerank.fake import FakeReranker
from finesift.server.app import create_app
from finesift.settings import Settings
from finesift.testing.chat import chat_server

pytest.importorskip("lancedb")
pytestmark = pytest.mark.service

OLD = "Deploy the old service with make deploy on port 8080."
NEW = "Deploy the new service with docker compose up on port 9090."
QUESTION = "deploy service port"


class GatedEmbedder(FakeEmbedder):
    """The fake embedder; once armed, its next call waits (at most 20 s) until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.entered, self.gate = threading.Event(), threading.Event()

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        if self.armed:
            self.armed = False
            self.entered.set()
            self.gate.wait(20)
        return super().embed(texts)


def settings_for(home: Path, url: str) -> Settings:
    return Settings(
        home=home,
        embedding={"model": "fake"},
        reranker={"model": "fake"},
        llm={"url": url, "model": "tiny"},
        answer={"threshold": 0, "max_concurrent": 64},
    )


@pytest.fixture
def chat_url() -> Iterator[str]:
    with chat_server() as (url, _):
        yield url


def create(client: Any, text: str) -> None:
    """(Re)create KB ``live`` holding one document, ``text``."""
    assert post_json(client, "/v1/kbs", {"name": "live"}).status_code == 201
    files = [("files", ("notes.md", text.encode()))]
    assert client.post("/v1/kbs/live/documents", files=files).status_code == 200


def ask(client: Any, route: str) -> tuple[int, str]:
    """(status, answer text) of one ask or chat completion on KB ``live``."""
    if route == "ask":
        response = post_json(client, "/v1/kbs/live/ask", {"query": QUESTION})
        return response.status_code, response.json().get("answer", "") if response.is_success else ""
    body = {"model": "live", "messages": [{"role": "user", "content": QUESTION}]}
    response = post_json(client, "/v1/chat/completions", body)
    return response.status_code, (
        response.json()["choices"][0]["message"]["content"] if response.is_success else ""
    )


def test_drop_waits_for_an_ask_in_flight_and_refuses_new_ones(tmp_path: Path, chat_url: str) -> None:
    gated = GatedEmbedder()
    services = StaticServices(Embedder(gated), Reranker(FakeReranker()))
    with (
        ready_client(create_app(settings_for(tmp_path, chat_url), services)) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        create(client, OLD)
        gated.armed = True
        in_flight = pool.submit(ask, client, "ask")
        assert gated.entered.wait(20)  # the ask holds the KB and is embedding its question
        dropped = pool.submit(client.delete, "/v1/kbs/live")
        for _ in range(400):  # once the drop has begun, new asks are told the KB is gone
            if (status := ask(client, "chat")[0]) == 404:
                break
            assert status == 200
            threading.Event().wait(0.02)
        else:
            pytest.fail("new asks were still answered while the KB was being dropped")
        assert not dropped.done()  # it waits for the ask that holds the KB
        gated.gate.set()
        status, answer = in_flight.result(20)
        assert status == 200 and "make deploy" in answer  # answered from the old KB, files intact
        assert dropped.result(20).status_code == 200
        assert ask(client, "ask")[0] == ask(client, "chat")[0] == 404

        create(client, NEW)
        for route in ("ask", "chat"):
            status, answer = ask(client, route)
            assert status == 200 and "docker compose" in answer, (route, status, answer)


def test_drop_and_recreate_while_asks_are_in_flight(tmp_path: Path, chat_url: str) -> None:
    with ready_client(create_app(settings_for(tmp_path, chat_url))) as client:
        create(client, OLD)
        stop = threading.Event()

        def asking(route: str) -> list[tuple[int, str]]:
            results = []
            for _ in range(60):  # bounded, even if the main thread never sets stop
                if stop.is_set():
                    break
                results.append(ask(client, route))
            return results

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(asking, route) for route in ("ask", "chat", "ask", "chat")]
            for text in (NEW, OLD, NEW):
                assert client.delete("/v1/kbs/live").status_code == 200
                create(client, text)
            stop.set()
            results = [r for f in futures for r in f.result(60)]
        assert results and all(status in (200, 404) for status, _ in results), results
        for status, answer in results:
            if status == 200:  # the old text, the new one, or a refusal from the new KB before its upload
                assert "make deploy" in answer or "docker compose" in answer or "No relevant" in answer
        assert ask(client, "ask")[0] == ask(client, "chat")[0] == 200  # both hold the last KB now
        assert client.delete("/v1/kbs/live").status_code == 200
        create(client, NEW)  # no ask in between: a handle kept by name would be stale now
        for route in ("ask", "chat"):
            status, answer = ask(client, route)
            assert status == 200 and "docker compose" in answer, (route, status, answer)


def test_ask_and_chat_on_a_kb_of_another_embedder_are_409_like_search(tmp_path: Path, chat_url: str) -> None:
    settings = settings_for(tmp_path, chat_url)
    KnowledgeBase.create("other", settings=settings, embedder=load_embedder("fake:32")).close()
    with ready_client(create_app(settings)) as client:
        search = post_json(client, "/v1/kbs/other/search", {"query": QUESTION})
        asked = post_json(client, "/v1/kbs/other/ask", {"query": QUESTION})
        body = {"model": "other", "messages": [{"role": "user", "content": QUESTION}]}
        chatted = post_json(client, "/v1/chat/completions", body)
        for response in (search, asked, chatted):
            assert response.status_code == 409, response.text
            assert "other" in response.json()["error"]["message"]
