"""KBRegistry without HTTP: handles are shared, replaced handles close after their last reader, drops."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("lancedb")

from finesift import load_embedder, load_reranker
from finesift.errors import InvalidRequest, NotFound
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.kb_service import KBRegistry
from finesift.settings import Settings
from finesift.types import Document


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[KBRegistry, list[Any]]:
    """A registry over a home with KB ``k``, and the list of KB objects closed so far."""
    settings = Settings(home=tmp_path, embedding={"model": "fake"}, reranker={"model": "fake"})
    embedder = load_embedder("fake")
    KnowledgeBase.create("k", settings=settings, embedder=embedder).close()
    models = SimpleNamespace(embedder=embedder, reranker=load_reranker("fake"))
    state = SimpleNamespace(services=models, require_embeddings=lambda: models)
    closed: list[Any] = []
    close = KnowledgeBase.close

    def recording_close(self: KnowledgeBase) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(KnowledgeBase, "close", recording_close)
    return KBRegistry(settings, state), closed  # type: ignore[arg-type]


def test_one_handle_per_kb_until_it_is_replaced(registry) -> None:
    kbs, closed = registry
    with kbs.lease("k") as first, kbs.lease("k") as again:
        assert first is again is kbs.open("k")
        kbs.forget("k")  # as when the KB changed on disk
        assert closed == []  # two readers still hold it
        with kbs.lease("k") as fresh:
            assert fresh is not first
    assert closed == [first]  # closed by its last reader
    kbs.close()
    assert closed == [first, fresh]


def test_a_drop_waits_for_readers_and_refuses_new_ones(registry) -> None:
    kbs, closed = registry
    entered, release, done = threading.Event(), threading.Event(), threading.Event()

    def reader() -> None:
        with kbs.lease("k"):
            entered.set()
            release.wait(20)

    def dropper() -> None:
        with kbs.dropping("k"):
            done.set()

    threads = [threading.Thread(target=reader), threading.Thread(target=dropper)]
    threads[0].start()
    assert entered.wait(20)
    threads[1].start()
    for _ in range(400):  # new readers are refused as soon as the drop has begun
        try:
            with kbs.lease("k"):
                pass
        except NotFound:
            break
        threading.Event().wait(0.01)
    else:
        pytest.fail("the drop never began")
    assert not done.is_set() and closed == []  # the drop waits for the reader that holds the KB
    release.set()
    for thread in threads:
        thread.join(20)
    assert done.is_set() and len(closed) == 1
    with kbs.lease("k") as kb:  # the drop's block is over (here nothing was deleted): readable again
        assert kb.name == "k"


def test_a_kb_dropped_outside_the_server_while_read_is_404(registry) -> None:
    kbs, _ = registry
    with kbs.lease("k") as kb:
        kb.add_documents([Document("a.md", "alpha beta gamma", "md")])
    with pytest.raises(NotFound, match="dropped or replaced"), kbs.lease("k") as kb:
        KnowledgeBase.drop("k", settings=kbs.settings)  # as `finesift kb drop` in another process
        kb.search("alpha")
    with pytest.raises(NotFound):
        kbs.open("k")


def test_a_request_error_stays_itself(registry) -> None:
    kbs, _ = registry
    with pytest.raises(InvalidRequest, match="bad option"), kbs.lease("k"):
        KnowledgeBase.drop("k", settings=kbs.settings)
        raise InvalidRequest("bad option")
