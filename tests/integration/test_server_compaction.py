"""Background compaction on every HTTP write path: uploads and deletes keep the store's versions and
files bounded; a compaction holds up neither searches nor a drop's outcome. Fake models, ASGI."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from server_support import ready_client

from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.app import create_app
from finesift.settings import Settings

pytest.importorskip("lancedb")
pytestmark = pytest.mark.service

VERSIONS = 8


def _settings(home: Path, **kb: Any) -> Settings:
    return Settings(
        home=home,
        embedding={"model": "fake"},
        reranker={"model": "fake"},
        kb={"optimize_versions": VERSIONS, **kb},
    )


def _text(i: int) -> bytes:
    return f"note number {i}: compaction keeps the store small".encode()


def _upload(client: Any, i: int) -> Any:
    return client.post("/v1/kbs/kb/documents", files=[("files", (f"n{i}.md", _text(i)))])


def _settle(app: Any) -> None:
    """Wait (at most 20 s) until no background compaction is queued or running."""
    for _ in range(2000):
        if not app.state.finesift_kbs.compacting:
            return
        time.sleep(0.01)
    pytest.fail("the background compaction did not end")


def _store(home: Path) -> tuple[int, int]:
    """(versions of the chunks table, files) of KB ``kb``'s store."""
    kb = KnowledgeBase.open("kb", settings=Settings(home=home))
    try:
        versions = len(kb.store._table("chunks").list_versions())  # type: ignore[attr-defined]
    finally:
        kb.close()
    files = sum(len(names) for _, _, names in os.walk(home / "kbs" / "kb"))
    return versions, files


def test_uploads_and_deletes_over_http_keep_the_store_bounded(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, optimize_keep=0.001))
    with ready_client(app) as client:
        assert client.post("/v1/kbs", json={"name": "kb"}).status_code == 201
        ids = []
        for i in range(40):
            response = _upload(client, i)
            assert response.status_code == 200, response.text
            ids.append(response.json()["documents"][0]["doc_id"])
        _settle(app)
        after_uploads = _store(tmp_path)
        for doc_id in ids[:20]:
            assert client.delete(f"/v1/kbs/kb/documents/{doc_id}").status_code == 200
        _settle(app)
        after_deletes = _store(tmp_path)
        assert len(client.get("/v1/kbs/kb/documents").json()["data"]) == 20
        hits = client.post("/v1/kbs/kb/search", json={"query": "note number 35"}).json()["hits"]
        assert hits and all(int(h["source"][len("upload://n") : -3]) >= 20 for h in hits)
    # Delete means gone: after the compactions that followed, the text of the first deletes is in no
    # file (the text of a kept document is, so the files are searchable as they are).
    stored = b"".join(p.read_bytes() for p in (tmp_path / "kbs" / "kb").rglob("*") if p.is_file())
    assert _text(35) in stored
    assert not [i for i in range(10) if _text(i) in stored]
    # Before the fix: about 2 versions per write and 8 files per version, never compacted over HTTP.
    for versions, files in (after_uploads, after_deletes):
        assert versions <= VERSIONS + 2, (after_uploads, after_deletes)
        assert files <= 8 * (VERSIONS + 2) + 20, (after_uploads, after_deletes)


def test_a_compaction_holds_up_no_search_and_a_drop_waits_for_it(tmp_path: Path, monkeypatch) -> None:
    entered, gate = threading.Event(), threading.Event()
    optimize = KnowledgeBase.optimize

    def held_optimize(self: KnowledgeBase) -> None:
        entered.set()
        gate.wait(20)
        optimize(self)

    monkeypatch.setattr(KnowledgeBase, "optimize", held_optimize)
    app = create_app(_settings(tmp_path))
    with ready_client(app) as client, ThreadPoolExecutor(1) as pool:
        assert client.post("/v1/kbs", json={"name": "kb"}).status_code == 201
        try:
            for i in range(VERSIONS):
                # Stop once a compaction is queued: a further upload would wait behind the held one.
                if app.state.finesift_kbs.compacting:
                    break
                assert _upload(client, i).status_code == 200
            assert entered.wait(20)  # a background compaction is running, in the KB's writer queue
            search = client.post("/v1/kbs/kb/search", json={"query": "note number"})
            assert search.status_code == 200 and search.json()["hits"]
            assert client.get("/v1/kbs/kb").status_code == 200
            dropped = pool.submit(client.delete, "/v1/kbs/kb")
            time.sleep(0.2)
            assert not dropped.done()  # the drop queues behind the compaction, never beside it
        finally:
            gate.set()
        assert dropped.result(20).status_code == 200
        _settle(app)
        assert client.get("/v1/kbs/kb").status_code == 404
        assert not (tmp_path / "kbs" / "kb").exists()
