"""A code-search KB reranks for code search on every face: CLI ``search``/``ask``, the server's KB
search, ``/ask`` and ``/v1/chat/completions``.

The fake reranker is wrapped to record the instruction of each call; the chat model is the loopback
server of :mod:`finesift.testing.chat`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_cli
from server_support import post_json, ready_client

from finesift.rerank.fake import FakeReranker
from finesift.server.app import create_app
from finesift.settings import Settings
from finesift.testing.chat import chat_server

pytest.importorskip("lancedb")
pytestmark = pytest.mark.service

# Written out, not read from the project: the test must fail if the name maps to another text.
CODE_TASK = "Given a natural language query, retrieve code snippets that answer the query"
CODE = "def get_user_name(user):\n    return user.name\n"
QUERY = "get user name"


@pytest.fixture
def instructions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(query, instruction) of every fake-reranker call in this process, the server's included."""
    seen: list[tuple[str, str]] = []
    score = FakeReranker.score

    def recording(self: FakeReranker, query: str, documents: Sequence[str], *, instruction: str) -> Any:
        seen.append((query, instruction))
        return score(self, query, documents, instruction=instruction)

    monkeypatch.setattr(FakeReranker, "score", recording)
    return seen


@pytest.fixture
def chat():
    with chat_server() as served:
        yield served


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path, *args: str):
    code, out, err = run_cli(monkeypatch, capsys, "--home", str(home), *args)
    assert code == 0, err
    return out


def test_cli_search_and_ask_rerank_with_the_kbs_instruction(
    monkeypatch, capsys, tmp_path: Path, instructions, chat
) -> None:
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "user.py").write_text(CODE, "utf-8")
    fake = ["--embedding-model", "fake", "--reranker-model", "fake"]
    run(monkeypatch, capsys, home, "index", str(docs), "--kb", "code", *fake, "--instruction", "code_search")
    info = json.loads(run(monkeypatch, capsys, home, "kb", "info", "code", "--json"))
    assert info["instruction"] == CODE_TASK

    hits = json.loads(run(monkeypatch, capsys, home, "search", QUERY, "--kb", "code", "--json"))["hits"]
    assert hits and instructions == [(QUERY, CODE_TASK)]

    url, _ = chat
    out = run(monkeypatch, capsys, home, "ask", QUERY, "--kb", "code", "--json", "--threshold", "0",
              "--llm-url", url, "--llm-model", "tiny")  # fmt: skip
    assert json.loads(out)["citations"] and instructions == [(QUERY, CODE_TASK)] * 2


def test_server_routes_rerank_with_the_kbs_instruction(tmp_path: Path, instructions, chat) -> None:
    """The server's reranker defaults to web search; a KB created for code search still reranks so."""
    url, _ = chat
    settings = Settings(
        home=tmp_path / "home",
        embedding={"model": "fake", "instruction": "code_search"},
        reranker={"model": "fake"},
        llm={"url": url, "model": "tiny"},
        answer={"threshold": 0},
    )
    with ready_client(create_app(settings)) as client:
        assert post_json(client, "/v1/kbs", {"name": "code"}).json()["instruction"] == CODE_TASK
        files = [("files", ("user.py", CODE.encode()))]
        assert client.post("/v1/kbs/code/documents", files=files).status_code == 200
        instructions.clear()  # the warm-up call used the reranker's own default

        search = post_json(client, "/v1/kbs/code/search", {"query": QUERY})
        assert search.status_code == 200 and search.json()["hits"]
        ask = post_json(client, "/v1/kbs/code/ask", {"query": QUERY})
        assert ask.status_code == 200 and ask.json()["citations"]
        streamed = post_json(client, "/v1/kbs/code/ask", {"query": QUERY, "stream": True})
        assert streamed.status_code == 200
        messages = [{"role": "user", "content": QUERY}]
        chat_body = post_json(client, "/v1/chat/completions", {"model": "code", "messages": messages})
        assert chat_body.status_code == 200 and chat_body.json()["citations"]
    assert instructions == [(QUERY, CODE_TASK)] * 4
