"""Stores by name: ``name -> "module:factory"`` plus the pip extra, imported only when chosen.

A factory is called as ``factory(path, dimension=..., create=...)`` and returns a
:class:`~finesift.store.base.VectorStore`; ``path`` is the knowledge base's private directory.
"""

from __future__ import annotations

from pathlib import Path

from finesift.registry import Entry, load_factory
from finesift.store.base import VectorStore

STORES: dict[str, Entry] = {
    "lancedb": Entry("finesift.store.lancedb:open_store", "kb"),
}


def open_store(kind: str, path: Path, *, dimension: int, create: bool = False) -> VectorStore:
    """Open (or create) the store named ``kind`` in ``path``."""
    factory = load_factory("store", kind, STORES)
    store: VectorStore = factory(path, dimension=dimension, create=create)
    return store
