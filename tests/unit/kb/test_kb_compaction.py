"""Compaction: every write path compacts once ``kb.optimize_versions`` versions piled up since the last
time, and the count starts again after a compaction even while old versions are kept for readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finesift.kb.knowledge_base import KnowledgeBase
from finesift.retrieval.pipeline import SearchOptions
from finesift.settings import Settings
from finesift.types import Document

VERSIONS = 6


@pytest.fixture
def settings(kb_settings: Settings) -> Settings:
    return kb_settings.model_copy(
        update={"kb": kb_settings.kb.model_copy(update={"optimize_versions": VERSIONS})}
    )


def _docs(i: int) -> list[Document]:
    return [Document(f"upload://d{i}.md", f"note number {i} about compaction", "md")]


def _lance_versions(kb: KnowledgeBase) -> int:
    return len(kb.store._table("chunks").list_versions())  # type: ignore[attr-defined]


def test_add_documents_and_delete_compact_once_due(settings: Settings) -> None:
    kb = KnowledgeBase.create("c", settings=settings)
    since = []
    for i in range(20):
        kb.add_documents(_docs(i))
        since.append(kb.store.versions_since_optimize())  # type: ignore[attr-defined]
    for i in range(15):
        kb.delete([f"upload://d{i}.md"])
        since.append(kb.store.versions_since_optimize())  # type: ignore[attr-defined]
    # Before the fix only `add` compacted: uploads and deletes piled up 2 versions per commit.
    assert max(since) < VERSIONS and 0 in since, since
    assert [d.source for d in kb.documents()] == [f"upload://d{i}.md" for i in range(15, 20)]
    hits = kb.search("note number compaction", SearchOptions(top_k=10, rerank=False))
    assert {h.source for h in hits} == {f"upload://d{i}.md" for i in range(15, 20)}


def test_the_count_starts_again_after_a_compaction_that_keeps_old_versions(settings: Settings) -> None:
    kb = KnowledgeBase.open(
        KnowledgeBase.create("c", settings=settings).name, settings=settings, auto_optimize=False
    )
    for i in range(8):
        kb.add_documents(_docs(i))
    assert kb.optimize_due()  # auto_optimize=False: the writes left it to the caller
    before = _lance_versions(kb)
    kb.optimize()  # the default keep (minutes): every version stays for readers of old snapshots
    assert _lance_versions(kb) >= before
    # Before the fix the count was every version listed, so each later write compacted again.
    assert kb.store.versions_since_optimize() == 0 and not kb.optimize_due()  # type: ignore[attr-defined]
    kb.add_documents(_docs(99))
    assert 0 < kb.store.versions_since_optimize() < VERSIONS  # type: ignore[attr-defined]
    assert len(kb.documents()) == 9


def test_a_pointer_written_before_the_count_existed_still_opens(settings: Settings) -> None:
    kb = KnowledgeBase.create("c", settings=settings)
    kb.add_documents(_docs(1))
    pointer = Path(kb.store.path) / "COMMIT"  # type: ignore[attr-defined]
    data = json.loads(pointer.read_text("utf-8"))
    data.pop("compacted")
    pointer.write_text(json.dumps(data), "utf-8")
    again = KnowledgeBase.open("c", settings=settings)
    assert again.store.versions_since_optimize() == data["chunks"]  # type: ignore[attr-defined]
    assert [d.source for d in again.documents()] == ["upload://d1.md"]
