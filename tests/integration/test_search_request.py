"""Issue 22, item 15: ``finesift search`` and ``POST /v1/kbs/{kb}/search`` build one request, one way.

Both faces go through :func:`finesift.retrieval.request.build_search`; the request each hands to the
knowledge base is recorded and compared, and the query is tokenised once per HTTP search (the
pipeline searches with the terms the answer reports).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_support import run_cli
from server_support import post_json, ready_client

from finesift import lexical
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.app import create_app
from finesift.settings import Settings

pytest.importorskip("lancedb")

QUERY = "  如何优化数据库 backups backups "


@pytest.fixture
def home(tmp_path: Path) -> Path:
    settings = Settings(home=tmp_path / "home", embedding={"model": "fake"}, reranker={"model": "fake"})
    (tmp_path / "db.md").write_text("# 数据库\n如何优化数据库：建立索引。Nightly backups.", "utf-8")
    with KnowledgeBase.create("kb", settings=settings) as kb:
        kb.add([tmp_path / "db.md"])
    return settings.home


@pytest.fixture
def requests(monkeypatch) -> list:
    """Every request a knowledge base is asked to run."""
    seen: list = []
    original = KnowledgeBase.run_search

    def recording(self, request):  # type: ignore[no-untyped-def]
        seen.append(request)
        return original(self, request)

    monkeypatch.setattr(KnowledgeBase, "run_search", recording)
    return seen


def test_cli_and_http_build_the_same_request(monkeypatch, capsys, home: Path, requests: list) -> None:
    code, _, err = run_cli(
        monkeypatch, capsys, "--home", str(home), "search", QUERY, "--kb", "kb", "--mode", "bm25",
        "--top-k", "3", "--no-rerank", "--source", "", "--type", ".MD", "--type", " ", "--json",
    )  # fmt: skip
    assert code == 0, err
    settings = Settings(home=home, embedding={"model": "fake"}, reranker={"model": "fake"})
    body = {
        "query": QUERY,
        "mode": "bm25",
        "top_k": 3,
        "rerank": False,
        "source": "",
        "file_types": [".MD", " "],
    }
    with ready_client(create_app(settings)) as client:
        found = post_json(client, "/v1/kbs/kb/search", body)
    assert found.status_code == 200, found.text
    cli, http = requests
    assert cli == http
    assert cli.query == QUERY.strip() and cli.options.filters.file_types == ("md",)
    assert cli.options.filters.source_prefix is None  # an empty prefix is no filter, on both faces
    assert found.json()["query_terms"] == list(dict.fromkeys(lexical.tokenize(QUERY.strip())))


def test_http_search_tokenises_the_query_once(monkeypatch, home: Path) -> None:
    calls: list[str] = []

    def counting(text: str, *, query: bool = False) -> list[str]:
        calls.append(text)
        return original(text, query=query)

    original = lexical.tokenize
    settings = Settings(home=home, embedding={"model": "fake"}, reranker={"model": "fake"})
    with ready_client(create_app(settings)) as client:
        for module in [m for name, m in sys.modules.items() if name.startswith("finesift")]:
            if getattr(module, "tokenize", None) is original:
                monkeypatch.setattr(module, "tokenize", counting)
        found = post_json(client, "/v1/kbs/kb/search", {"query": QUERY, "mode": "hybrid"})
    assert found.status_code == 200, found.text
    assert found.json()["hits"] and calls == [QUERY.strip()]
