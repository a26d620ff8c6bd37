"""KB work on its own threads, the deadline over the open, and true statuses under read pressure.

Whatever else the server runs on asyncio's default executor (parsing uploads did), KB reads and
answers do not wait for it. Fake models, the app over ASGI, the chat model of
:mod:`finesift.testing.chat` on loopback.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from server_support import ready_client

from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.app import create_app
from finesift.settings import Settings
from finesift.testing.chat import chat_server
from finesift.types import Document

pytest.importorskip("lancedb")
pytestmark = pytest.mark.service

TEXT = b"Deploy the service with docker compose up on port 9090."
#: Threads of asyncio's default executor (Python's formula): enough parses to fill every one.
DEFAULT_THREADS = min(32, (os.cpu_count() or 1) + 4)


@pytest.fixture
def chat_url() -> Iterator[str]:
    with chat_server() as (url, _):
        yield url


def _settings(home: Path, chat_url: str, **server: Any) -> Settings:
    return Settings(
        home=home,
        embedding={"model": "fake"},
        reranker={"model": "fake"},
        llm={"url": chat_url, "model": "tiny"},
        answer={"threshold": 0},
        server=server,
    )


def _upload(client: Any, kb: str, name: str) -> Any:
    return client.post(f"/v1/kbs/{kb}/documents", files=[("files", (name, TEXT))])


class Gate:
    """A blocking call that waits (at most 20 s) until the test opens the gate; counts who entered."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = 0
        self.all_in = threading.Event()
        self.expected = 1
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            self.entered += 1
            if self.entered >= self.expected:
                self.all_in.set()
        self.opened.wait(20)


def test_search_info_and_ask_answer_while_the_default_executor_is_full(tmp_path: Path, chat_url: str) -> None:
    """Every thread of asyncio's default executor is busy (as with the uploads being parsed there in
    the report: a search then waited 89.6 s); searches, info and answers still answer."""
    gate = Gate()
    gate.expected = DEFAULT_THREADS

    async def fill_default_executor() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, gate.wait) for _ in range(DEFAULT_THREADS + 2)))

    with ready_client(create_app(_settings(tmp_path, chat_url))) as client, ThreadPoolExecutor(1) as pool:
        assert client.post("/v1/kbs", json={"name": "kb"}).status_code == 201
        assert _upload(client, "kb", "first.md").status_code == 200
        client.portal.start_task_soon(fill_default_executor)  # type: ignore[union-attr]
        try:
            assert gate.all_in.wait(20)  # every thread of the default executor is taken now
            search = pool.submit(client.post, "/v1/kbs/kb/search", json={"query": "docker port"})
            response = search.result(15)  # before the fix: queued behind the busy threads
            assert response.status_code == 200 and response.json()["hits"], response.text
            assert client.get("/v1/kbs/kb").status_code == 200
            assert client.get("/v1/kbs/kb/documents").status_code == 200
            asked = client.post("/v1/kbs/kb/ask", json={"query": "docker port"})
            assert asked.status_code == 200 and "docker compose" in asked.json()["answer"], asked.text
            assert not gate.opened.is_set()
        finally:
            gate.opened.set()


def test_the_deadline_covers_the_open(tmp_path: Path, chat_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An open that hangs is a 503 at the deadline for uploads, searches and answers alike, and holds
    up no other KB."""
    settings = _settings(tmp_path, chat_url, request_timeout=0.5)
    for name in ("fast", "slow1", "slow2", "slow3"):
        with KnowledgeBase.create(name, settings=settings) as kb:
            kb.add_documents([Document("upload://a.md", TEXT.decode(), "md")])
    gate = threading.Event()
    opened = KnowledgeBase.open.__func__  # type: ignore[attr-defined]

    def hanging_open(cls: type[KnowledgeBase], name: str, **kwargs: Any) -> KnowledgeBase:
        if name.startswith("slow"):
            gate.wait(10)
        return opened(cls, name, **kwargs)

    with ready_client(create_app(settings)) as client, ThreadPoolExecutor(3) as pool:
        monkeypatch.setattr(KnowledgeBase, "open", classmethod(hanging_open))
        try:
            calls = [
                pool.submit(_upload, client, "slow1", "b.md"),
                pool.submit(client.post, "/v1/kbs/slow2/search", json={"query": "docker"}),
                pool.submit(client.post, "/v1/kbs/slow3/ask", json={"query": "docker"}),
            ]
            for call in calls:
                response = call.result(8)  # before the fix: the upload and the ask waited for the open
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "deadline_exceeded"
                assert response.headers["retry-after"]
            fast = client.post("/v1/kbs/fast/search", json={"query": "docker"})
            assert fast.status_code == 200, fast.text
        finally:
            gate.set()


def test_a_committed_upload_is_200_under_read_pressure(
    tmp_path: Path, chat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read slot is taken (the next search gets 429); an upload still commits and says so, with
    the documents it stored, and the document is there."""
    settings = _settings(tmp_path, chat_url, queue_size=1, kb_read_threads=1)
    gate = Gate()
    search = KnowledgeBase.run_search  # what the search route calls

    def held_search(self: KnowledgeBase, *args: Any, **kwargs: Any) -> Any:
        gate.wait()
        return search(self, *args, **kwargs)

    with ready_client(create_app(settings)) as client, ThreadPoolExecutor(1) as pool:
        assert client.post("/v1/kbs", json={"name": "kb"}).status_code == 201
        monkeypatch.setattr(KnowledgeBase, "run_search", held_search)
        held = pool.submit(client.post, "/v1/kbs/kb/search", json={"query": "docker"})
        try:
            assert gate.all_in.wait(20)
            refused = client.post("/v1/kbs/kb/search", json={"query": "docker"})
            assert refused.status_code == 429  # the pressure is real
            for i in range(5):
                response = _upload(client, "kb", f"u{i}.md")
                assert response.status_code == 200, response.text
                report = response.json()
                assert report["documents_added"] == 1
                assert [d["source"] for d in report["documents"]] == [f"upload://u{i}.md"]
        finally:
            gate.opened.set()
        assert held.result(20).status_code == 200
        sources = {d["source"] for d in client.get("/v1/kbs/kb/documents").json()["data"]}
        assert sources == {f"upload://u{i}.md" for i in range(5)}
