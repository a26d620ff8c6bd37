"""When and how a knowledge base's store is compacted.

A store that keeps versions (LanceDB) counts the versions written since its last compaction; once
``kb.optimize_versions`` piled up, a write compacts it (or, for a KB opened with ``auto=False`` as
the server opens them, leaves it to the caller, who runs it in the background). Compaction leaves
the content unchanged and prunes versions older than ``kb.optimize_keep`` seconds, which readers of
older snapshots may still hold. Milvus compacts itself; the pgvector store says itself when it has work
(``optimize_due``: its HNSW index was dropped for a bulk write and is to be built again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from finesift.kb import manifest as mf
from finesift.settings import KBSettings
from finesift.store.base import VectorStore


@dataclass
class Compaction:
    """The compaction policy of one open KB: its store, its ``kb`` settings and its writer lock."""

    store: VectorStore
    settings: KBSettings
    path: Path
    name: str
    auto: bool = True

    def due(self) -> bool:
        """Whether the store says it has work, or ``kb.optimize_versions`` versions were written since."""
        own = getattr(self.store, "optimize_due", None)
        if own is not None and own():
            return True
        versions = getattr(self.store, "versions_since_optimize", None)
        return versions is not None and versions() >= self.settings.optimize_versions

    def run(self) -> None:
        """Compact now, taking the writer lock (:class:`~finesift.errors.Conflict` while it is held)."""
        with mf.writer_lock(self.path, self.name):
            self.run_locked()

    def run_locked(self) -> None:
        """Compact now; the caller holds the writer lock."""
        optimize = getattr(self.store, "optimize", None)
        if optimize is not None:
            optimize(keep=timedelta(seconds=self.settings.optimize_keep))

    def after_write(self) -> None:
        """Compact when due and this KB does it itself (call with the writer lock held)."""
        if self.auto and self.due():
            self.run_locked()
