"""The Milvus store pins one version per document even when a read sees a replaced row beside the new one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from finesift.store import generations as g
from finesift.store.milvus import MilvusStore
from finesift.store.milvus_snapshot import MilvusSnapshot
from finesift.types import DocumentInfo


def _row(doc_id: str, gen: int, chunks: int) -> dict[str, object]:
    info = DocumentInfo(doc_id, f"{doc_id}.md", "md", f"h{gen}", "p", chunks, 10 * chunks)
    return {"gen": gen, "info": g.info_json(info)}


def test_a_replaced_row_read_beside_its_successor_is_not_pinned() -> None:
    """An upsert is a delete plus an insert in Milvus: a read between them returns the old row too
    (seen once under load on Milvus Lite). The newest generation at the version is the live one."""
    rows = [_row("a", 4, 3), _row("b", 2, 1), _row("a", 3, 2)]  # "a"@3 was replaced by the commit at 4
    store = SimpleNamespace(query_all=lambda part, expr, fields: rows)
    pinned = {info.doc_id: (info.chunks, gen) for info, gen in MilvusStore.doc_versions(store, 4)}  # type: ignore[arg-type]
    assert pinned == {"a": (3, 4), "b": (1, 2)}


def _hit(doc_id: str, gen: int, idx: int) -> dict[str, object]:
    return {
        "doc_id": doc_id, "gen": gen, "idx": idx, "text": f"{doc_id}{gen}", "start": 0, "end": 3,
        "page": -1, "source": f"{doc_id}.md", "file_type": "md",
    }  # fmt: skip


def test_search_hits_come_only_from_the_pinned_versions() -> None:
    """A search beside a commit may return the replaced version's chunks too (the marking upsert is
    not atomic); the snapshot drops every hit whose generation it did not pin."""
    docs = [_row("a", 4, 2), _row("b", 2, 1)]
    hits = [(_hit("a", 3, 0), 0.9), (_hit("a", 4, 0), 0.8), (_hit("b", 2, 0), 0.7), (_hit("c", 4, 0), 0.6)]
    store = SimpleNamespace(
        doc_versions=lambda version: MilvusStore.doc_versions(  # type: ignore[arg-type]
            SimpleNamespace(query_all=lambda part, expr, fields: docs), version
        ),
        vector_search=lambda vector, k, expr: hits,
        bm25_search=lambda text, k, expr: hits,
        bm25_in_store=True,
    )
    snapshot = MilvusSnapshot(store, 4)  # type: ignore[arg-type]
    found = snapshot.search(np.ones(2, np.float32), k=4)
    assert [(h.chunk.doc_id, h.chunk.text) for h in found] == [("a", "a4"), ("b", "b2")]
    lexical = snapshot.lexical_search(["a"], k=4)
    assert [(h.chunk.doc_id, h.chunk.text) for h in lexical] == [("a", "a4"), ("b", "b2")]


def test_a_search_asks_again_for_the_places_unpinned_hits_took() -> None:
    """Dropping the replaced version's hits must not leave a search short of ``k`` when more pinned hits
    exist: the snapshot asks again with room for what it dropped (bounded: three asks at most)."""
    docs = [_row("a", 4, 2), _row("b", 2, 2)]
    ranked = [(_hit("a", 3, 0), 0.9), (_hit("a", 3, 1), 0.85), (_hit("a", 4, 0), 0.8), (_hit("b", 2, 0), 0.7)]
    ranked += [(_hit("b", 2, 1), 0.6)]
    asked: list[int] = []

    def fetch(vector: object, limit: int, expr: str) -> list[tuple[dict[str, object], float]]:
        asked.append(limit)
        return ranked[:limit]

    store = SimpleNamespace(
        doc_versions=lambda version: MilvusStore.doc_versions(  # type: ignore[arg-type]
            SimpleNamespace(query_all=lambda part, expr, fields: docs), version
        ),
        vector_search=fetch,
    )
    snapshot = MilvusSnapshot(store, 4)  # type: ignore[arg-type]
    found = snapshot.search(np.ones(2, np.float32), k=3)
    assert [h.chunk.text for h in found] == ["a4", "b2", "b2"]
    assert asked == [3, 7]
    asked.clear()
    assert len(snapshot.search(np.ones(2, np.float32), k=5)) == 3  # only 3 pinned hits exist
    assert asked == [5, 9]  # the second ask came back short of its limit: nothing more to find
