"""Create/drop of a KB racing with its users: a drop waits for the requests that hold the KB.

Every request gets a complete response (no dropped keep-alive connection), every status is one that
says what happened (200/201 done, 404 gone or being dropped, 409 name taken or in use, 429 busy),
and no body carries a server path. Fake models; the chat model is :mod:`finesift.testing.chat`;
the storm runs on real loopback connections (uvicorn on 127.0.0.1), the rest over ASGI.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from server_support import live_server, ready_client, wait_ready

from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.app import create_app
from finesift.settings import Settings
from finesift.testing.chat import chat_server

pytest.importorskip("lancedb")
pytestmark = pytest.mark.service

RUN_S = 4.0
ALLOWED = {200, 201, 404, 409, 429}
TEXT = b"Deploy the service with docker compose up on port 9090."


def _settings(home: Path, chat_url: str) -> Settings:
    return Settings(
        home=home,
        embedding={"model": "fake"},
        reranker={"model": "fake"},
        llm={"url": chat_url, "model": "tiny"},
        answer={"threshold": 0, "max_concurrent": 64},
        kb={"optimize_versions": 4},  # background compactions run during the storm too
    )


def _operations() -> dict[str, Callable[[httpx.Client], httpx.Response]]:
    ask = {"query": "deploy port"}
    chat = {"model": "live", "messages": [{"role": "user", "content": "deploy port"}]}
    return {
        "create": lambda c: c.post("/v1/kbs", json={"name": "live"}),
        "drop": lambda c: c.delete("/v1/kbs/live"),
        "search": lambda c: c.post("/v1/kbs/live/search", json={"query": "deploy port"}),
        "upload": lambda c: c.post("/v1/kbs/live/documents", files=[("files", ("notes.md", TEXT))]),
        "info": lambda c: c.get("/v1/kbs/live"),
        "documents": lambda c: c.get("/v1/kbs/live/documents"),
        "ask": lambda c: c.post("/v1/kbs/live/ask", json=ask),
        "chat": lambda c: c.post("/v1/chat/completions", json=chat),
    }


def _loop(url: str, names: list[str], until: float, home: str) -> tuple[Counter[str], list[str]]:
    """Run the operations ``names`` round-robin on one keep-alive connection until ``until``."""
    ops = _operations()
    seen: Counter[str] = Counter()
    problems: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(10_000):  # bounded even if the clock misbehaves
            if time.monotonic() > until:
                break
            for name in names:
                try:
                    response = ops[name](client)
                except httpx.TransportError as exc:  # no response: the connection died
                    seen[f"{name} no-response"] += 1
                    problems.append(f"{name}: {type(exc).__name__}: {exc}")
                    continue
                seen[f"{name} {response.status_code}"] += 1
                if response.status_code not in ALLOWED:
                    problems.append(f"{name} -> {response.status_code}: {response.text[:300]}")
                if home in response.text:
                    problems.append(f"{name} -> a server path in the body: {response.text[:300]}")
    return seen, problems


def test_create_drop_loop_against_every_kind_of_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with chat_server() as (chat_url, _):
        app = create_app(_settings(home, chat_url))
        with live_server(app) as (url, _server):
            wait_ready(app)
            until = time.monotonic() + RUN_S
            plans = [
                *[["create", "drop"]] * 2, ["create", "upload", "drop"],
                *[["info", "documents"]] * 3, ["search"], ["upload"], ["ask", "chat"], ["search", "info"],
            ]  # fmt: skip
            with ThreadPoolExecutor(len(plans)) as pool:
                futures = [pool.submit(_loop, url, plan, until, str(tmp_path)) for plan in plans]
                results = [f.result(RUN_S + 60) for f in futures]
            seen = sum((r[0] for r in results), Counter())
            problems = [p for r in results for p in r[1]]
            print(dict(sorted(seen.items())))  # the statuses seen, for the report (pytest -s)
            assert not problems, problems[:10]
            assert seen["create 201"] and seen["drop 200"] and seen["search 200"], seen

            # After the storm: the KB re-created once more serves search, ask and chat at once.
            with httpx.Client(base_url=url, timeout=30) as client:
                client.delete("/v1/kbs/live")
                assert client.post("/v1/kbs", json={"name": "live"}).status_code == 201
                ops = _operations()
                assert ops["upload"](client).status_code == 200
                for name in ("search", "ask", "chat", "info"):
                    response = ops[name](client)
                    assert response.status_code == 200, (name, response.text)


def test_a_drop_waits_for_info_and_document_lists_in_flight(tmp_path: Path, monkeypatch) -> None:
    """Info and document lists read the KB without models; a drop used to delete the files under them
    (500 with a dropped connection, or 503 naming the server's path)."""
    entered, gate = threading.Event(), threading.Event()
    info = KnowledgeBase.info

    def held_info(self: KnowledgeBase) -> dict:
        entered.set()
        gate.wait(20)
        return info(self)

    settings = Settings(home=tmp_path / "home", embedding={"model": "fake"}, reranker={"model": "fake"})
    with ready_client(create_app(settings)) as client, ThreadPoolExecutor(2) as pool:
        assert client.post("/v1/kbs", json={"name": "live"}).status_code == 201
        assert client.post("/v1/kbs/live/documents", files=[("files", ("a.md", TEXT))]).status_code == 200
        monkeypatch.setattr(KnowledgeBase, "info", held_info)
        reading = pool.submit(client.get, "/v1/kbs/live")
        try:
            assert entered.wait(20)
            dropping = pool.submit(client.delete, "/v1/kbs/live")
            for _ in range(400):  # new reads are refused once the drop began
                if client.get("/v1/kbs/live/documents").status_code == 404:
                    break
                time.sleep(0.01)
            else:
                pytest.fail("the drop never began")
            assert not dropping.done()  # it waits for the info that holds the KB
        finally:
            gate.set()
        response = reading.result(20)
        assert response.status_code == 200, response.text
        assert response.json()["documents"] == 1
        assert dropping.result(20).status_code == 200
        assert client.get("/v1/kbs/live").status_code == 404


def test_an_unexpected_error_is_a_500_and_nothing_is_raised_after_it(tmp_path: Path, monkeypatch) -> None:
    """Starlette's handler for ``Exception`` re-raises after sending the 500, and uvicorn then closes
    the keep-alive connection; the test client raises that exception (``raise_server_exceptions``)."""

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("/secret/server/path exploded")

    monkeypatch.setattr(KnowledgeBase, "names", broken)
    settings = Settings(home=tmp_path / "home", embedding={"model": "fake"}, reranker={"model": "fake"})
    with ready_client(create_app(settings)) as client:
        response = client.get("/v1/kbs")
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert "secret" not in response.text
        assert client.get("/health").status_code == 200
