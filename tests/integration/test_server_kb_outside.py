"""docs/guides/kb-http.md: a KB dropped or re-created outside the server is noticed on the next request."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_support import post_json, ready_client

from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.server.app import create_app
from finesift.settings import Settings

pytest.importorskip("lancedb")


def test_a_kb_dropped_and_re_created_outside_the_server_is_reopened(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", embedding={"model": "fake"}, reranker={"model": "fake"})
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "old.md").write_text("the old handbook talks about databases", encoding="utf-8")
    (second / "new.md").write_text("the new handbook talks about databases", encoding="utf-8")
    with open_or_create("hb", settings=settings) as kb:
        kb.add([first])
    with ready_client(create_app(settings)) as client:

        def sources() -> set[str]:
            r = post_json(client, "/v1/kbs/hb/search", {"query": "handbook databases", "rerank": False})
            assert r.status_code == 200, r.text
            return {Path(h["source"]).name for h in r.json()["hits"]}

        assert sources() == {"old.md"}  # the server has the KB open
        KnowledgeBase.drop("hb", settings=settings)  # another process (the CLI) drops it ...
        assert client.get("/v1/kbs/hb").status_code == 404
        with open_or_create("hb", settings=settings) as kb:  # ... and builds it again
            kb.add([second])
        assert sources() == {"new.md"}
