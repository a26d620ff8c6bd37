"""The Milvus store pins one version per document even when a read sees a replaced row beside the new one."""

from __future__ import annotations

from types import SimpleNamespace

from finesift.store import generations as g
from finesift.store.milvus import MilvusStore
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
