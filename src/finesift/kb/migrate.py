"""``finesift kb migrate NAME --to URI``: copy a KB into another store without re-embedding.

Under the KB's writer lock, documents are exported from the current snapshot (chunks, vectors,
BM25 terms) and committed into a new store in a fresh directory ``store-<id>``, in batches of about
``kb.commit_chunks`` chunks. The copy is checked (same documents, same chunk count), then the
manifest is replaced atomically to name the new store: that rename is the switch, so a crash before
it leaves the KB on its old store (the half-copied one is cleaned up by the next migration), and a
crash after it leaves the KB on the complete new one. The old store is deleted last.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from finesift.errors import InvalidRequest, StoreError
from finesift.kb import manifest as mf
from finesift.kb.stores import drop_server_data, store_token
from finesift.settings import Settings
from finesift.store.base import StoreSnapshot, VectorStore
from finesift.store.registry import normalize_store_uri, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationReport:
    """What a migration copied, from which store to which, and how long it took (seconds)."""

    name: str
    source: str
    target: str
    documents: int
    chunks: int
    seconds: float


def copy_documents(snapshot: StoreSnapshot, target: VectorStore, *, batch_chunks: int) -> tuple[int, int]:
    """Commit every document of ``snapshot`` into ``target`` in batches; (documents, chunks) copied."""
    batch: list[str] = []
    size = docs = chunks = 0
    for info in snapshot.documents():
        batch.append(info.doc_id)
        size += info.chunks
        if size >= batch_chunks:
            writes = snapshot.export(batch)
            target.commit(upserts=writes)
            docs, chunks = docs + len(writes), chunks + sum(len(w.chunks) for w in writes)
            batch, size = [], 0
    if batch:
        writes = snapshot.export(batch)
        target.commit(upserts=writes)
        docs, chunks = docs + len(writes), chunks + sum(len(w.chunks) for w in writes)
    return docs, chunks


def _remove_leftovers(path: Path, keep: Path) -> None:
    for leftover in path.glob("store-*"):
        if leftover != keep and leftover.is_dir():
            log.warning("removing %s, left by an interrupted migration", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def migrate(name: str, *, to: str, settings: Settings | None = None) -> MigrationReport:
    """Copy KB ``name`` into the store ``to`` (a URI or ``lancedb``) and switch the KB to it."""
    settings = settings or Settings()
    to = normalize_store_uri(to)  # an unknown URI fails before anything happens
    path = mf.kb_dir(settings.home, name)
    manifest = mf.read_manifest(path, name)
    if to == manifest.store:
        raise InvalidRequest(f"knowledge base {name!r} already uses {to}; pass another --to")
    started = time.perf_counter()
    token = store_token(settings)
    with mf.writer_lock(path, name):
        old_dir = mf.store_path(path, manifest)
        _remove_leftovers(path, keep=old_dir)
        new_dir = path / f"store-{uuid.uuid4().hex[:8]}"
        source = open_store(manifest.store, old_dir, dimension=manifest.dim, token=token)
        target = open_store(to, new_dir, dimension=manifest.dim, create=True, token=token)
        try:
            snap = source.snapshot()
            docs, chunks = copy_documents(snap, target, batch_chunks=settings.kb.commit_chunks)
            check = target.snapshot()
            if len(check.documents()) != len(snap.documents()) or check.count_chunks() != snap.count_chunks():
                raise StoreError(
                    f"the copy of {name!r} in {to} is incomplete; the KB stays on {manifest.store}"
                )
        except BaseException:
            target.close()
            drop_server_data(dataclasses.replace(manifest, store=to), new_dir, settings)
            shutil.rmtree(new_dir, ignore_errors=True)
            raise
        finally:
            source.close()
        target.close()
        switched = dataclasses.replace(
            manifest, store=to, extra={**manifest.extra, "store_dir": new_dir.name}
        )
        mf.write_manifest(path, switched)
        drop_server_data(manifest, old_dir, settings)
        shutil.rmtree(old_dir, ignore_errors=True)
    return MigrationReport(name, manifest.store, to, docs, chunks, time.perf_counter() - started)
