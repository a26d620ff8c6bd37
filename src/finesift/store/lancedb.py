"""The embedded LanceDB store: two Lance tables plus a commit pointer that makes commits atomic.

Every Lance write (delete, add) creates a new table version, so one logical commit spans several
versions of two tables. The file ``COMMIT`` names the table versions of the last complete commit
(``{"seq", "documents", "chunks"}``) and is replaced atomically (write, fsync, rename) as the
*last* step of :meth:`LanceStore.commit`. Readers check out exactly those versions, so they never
see a half-done commit; a writer first restores both tables to the committed versions, so a crash
(kill -9 at any point) leaves only invisible, discarded versions. Old versions are kept until
:meth:`LanceStore.optimize` compacts and prunes them; the pointer also records the chunks table's
version right after the last compaction (``compacted``), so the versions written since are counted
without listing them. The full-text and ANN indexes, and how they stay current, are in
:mod:`finesift.store.lance_index`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from finesift.errors import MissingDependency, StoreError
from finesift.fsutil import write_json_atomic
from finesift.store.base import DocumentWrite, StoreSnapshot, validate_write
from finesift.store.lance_index import LEX, LanceIndexOptions, build_ann_if_due, create_fts, upgrade
from finesift.store.lance_snapshot import LanceSnapshot, sql_list
from finesift.types import DocumentInfo

log = logging.getLogger(__name__)
POINTER = "COMMIT"
FORMAT = 1
DOCUMENTS, CHUNKS = "documents", "chunks"


def _no_fault(step: str) -> None:
    """The default :data:`fault_hook`: nothing happens."""


#: Test seam: called with a step name at each point of the commit path (kill -9 tests hook it).
fault_hook: Callable[[str], None] = _no_fault


#: A package whose ``__init__`` is not run while ``lancedb`` is imported: the REST namespace client's
#: ``__init__`` imports its nine API modules, whose 366 ``validate_call`` decorators build pydantic
#: schemas (a fifth of ``import lancedb``, which dominates a fresh ``finesift search``) for a client
#: that a local or object-store LanceDB never uses. Its ``models`` (which lancedb uses) import as usual.
REST_CLIENT = "lance_namespace_urllib3_client"


def _defer_package_init(name: str) -> None:
    """Register package ``name`` without running its ``__init__`` until one of its attributes is asked for.

    Its submodules import as usual meanwhile (and become its attributes); the first access to any
    other attribute (``from name import X``, ``name.X``) runs the ``__init__`` in the same module.
    """
    spec = None if name in sys.modules else importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    bare = importlib.util.module_from_spec(spec)

    def complete(attribute: str) -> Any:
        if bare.__dict__.pop("__getattr__", None) is None:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        spec.loader.exec_module(bare)  # type: ignore[union-attr]
        return getattr(bare, attribute)

    bare.__dict__["__getattr__"] = complete
    sys.modules[name] = bare


def _lancedb() -> Any:
    try:
        _defer_package_init(REST_CLIENT)
        import lancedb
    except ImportError as exc:
        raise MissingDependency("lancedb", "kb", "needed by the LanceDB store") from exc
    return lancedb


def schemas(dimension: int) -> tuple[Any, Any]:
    """The Arrow schemas of the documents and chunks tables."""
    import pyarrow as pa

    documents = pa.schema([
        ("doc_id", pa.string()), ("source", pa.string()), ("file_type", pa.string()),
        ("content_hash", pa.string()), ("pipeline", pa.string()), ("chunks", pa.int32()),
        ("chars", pa.int64()), ("pages", pa.int32()), ("size", pa.int64()), ("indexed_at", pa.string()),
    ])  # fmt: skip
    chunks = pa.schema([
        ("chunk_id", pa.string()), ("doc_id", pa.string()), ("idx", pa.int32()), ("source", pa.string()),
        ("file_type", pa.string()), ("text", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
        ("page", pa.int32()), ("terms", pa.list_(pa.string())), ("vector", pa.list_(pa.float32(), dimension)),
        (LEX, pa.string()),
    ])  # fmt: skip
    return documents, chunks


def settle(table: Any) -> bool:
    """Compact and fold new rows into every index until a pass writes nothing; whether that happened.

    One pass is not always enough: compaction after an index refresh may merge fragments further.
    """
    for _ in range(4):
        before = table.version
        table.optimize(cleanup_older_than=timedelta(days=36500))
        if table.version == before:
            return True
    return False


@dataclass(frozen=True)
class Pointer:
    """The last complete commit: its sequence number and the table versions it consists of."""

    seq: int
    documents: int
    chunks: int
    compacted: int = 0  # the chunks table's version after the last compaction (0: never compacted)

    def write(self, path: Path) -> None:
        """Replace the pointer file in ``path`` atomically (the last step of every commit)."""
        write_json_atomic(
            path / POINTER,
            {
                "format": FORMAT, "seq": self.seq, DOCUMENTS: self.documents, CHUNKS: self.chunks,
                "compacted": self.compacted,
            },
        )  # fmt: skip


class LanceStore:
    """A :class:`~finesift.store.base.VectorStore` in a local directory."""

    def __init__(self, path: str | Path, *, options: LanceIndexOptions | None = None) -> None:
        self.path = Path(path)
        self.options = options or LanceIndexOptions()
        if not (self.path / POINTER).is_file():
            raise StoreError(f"{self.path} is not a finesift LanceDB store (no {POINTER} file)")
        self._db = _lancedb().connect(str(self.path / "lance"))
        self._snapshot: LanceSnapshot | None = None
        self._read_pointer()  # fail early on a damaged pointer
        self._dimension = int(self._table(CHUNKS).schema.field("vector").type.list_size)

    @classmethod
    def create(
        cls, path: str | Path, *, dimension: int, options: LanceIndexOptions | None = None
    ) -> LanceStore:
        """A new, empty store in ``path`` (which must not hold one)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if (path / POINTER).exists():
            raise StoreError(f"{path} already holds a store")
        db = _lancedb().connect(str(path / "lance"))
        docs_schema, chunks_schema = schemas(dimension)
        documents = db.create_table(DOCUMENTS, schema=docs_schema)
        chunks = db.create_table(CHUNKS, schema=chunks_schema)
        create_fts(chunks)
        Pointer(0, documents.version, chunks.version).write(path)
        return cls(path, options=options)

    @property
    def dimension(self) -> int:
        return self._dimension

    def _table(self, name: str) -> Any:
        try:
            return self._db.open_table(name)
        except (OSError, ValueError, RuntimeError) as exc:
            raise StoreError(
                f"cannot open table {name!r} in {self.path}: {exc}; the store is damaged"
            ) from exc

    def _read_pointer(self) -> Pointer:
        try:
            data = json.loads((self.path / POINTER).read_text(encoding="utf-8"))
            compacted = int(data.get("compacted", 0))  # absent in pointers written before it existed
            return Pointer(int(data["seq"]), int(data[DOCUMENTS]), int(data[CHUNKS]), compacted)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the commit pointer of {self.path} is unreadable: {exc}") from exc

    def snapshot(self) -> StoreSnapshot:
        """The last committed state; the same object while nothing new is committed (caches stay warm)."""
        pointer = self._read_pointer()
        if self._snapshot is None or self._snapshot.version != pointer.seq:
            tables = {}
            for name, version in ((DOCUMENTS, pointer.documents), (CHUNKS, pointer.chunks)):
                table = self._table(name)
                table.checkout(version)
                tables[name] = table
            self._snapshot = LanceSnapshot(pointer.seq, tables[DOCUMENTS], tables[CHUNKS], self.options)
        return self._snapshot

    def _writable(self, pointer: Pointer) -> tuple[Any, Any]:
        """Both tables at their latest version, rolled back first to the commit if a writer crashed."""
        out = []
        for name, version in ((DOCUMENTS, pointer.documents), (CHUNKS, pointer.chunks)):
            table = self._table(name)
            if table.version != version:
                log.warning(
                    "rolling back %s of %s from version %d to committed %d (an earlier write stopped)",
                    name,
                    self.path,
                    table.version,
                    version,
                )
                table.checkout(version)
                table.restore()
            out.append(table)
        return out[0], out[1]

    def commit(self, *, upserts: Sequence[DocumentWrite] = (), deletes: Sequence[str] = ()) -> int:
        """Atomically replace the documents in ``upserts`` and delete ``deletes``; the new commit's seq."""
        for write in upserts:
            validate_write(write, self._dimension)
        pointer = self._read_pointer()
        ids = sorted({w.info.doc_id for w in upserts} | set(deletes))
        if not ids:
            return pointer.seq
        documents, chunks = self._writable(pointer)
        upgrade(chunks)  # a store written before the token column gets it in this commit
        where = f"doc_id IN {sql_list(ids)}"
        chunks.delete(where)
        fault_hook("chunks_deleted")
        rows = self._chunk_rows(upserts)
        if rows.num_rows:
            chunks.add(rows)
        fault_hook("chunks_added")
        documents.delete(where)
        if upserts:
            documents.add(self._document_rows([w.info for w in upserts]))
        fault_hook("documents_written")
        seq = pointer.seq + 1
        Pointer(seq, documents.version, chunks.version, pointer.compacted).write(self.path)
        fault_hook("committed")
        return seq

    def _chunk_rows(self, upserts: Sequence[DocumentWrite]) -> Any:
        import pyarrow as pa

        chunks = [c for w in upserts for c in w.chunks]
        vectors = [w.vectors for w in upserts if len(w.chunks)]
        flat = np.concatenate(vectors).astype(np.float32).ravel() if vectors else np.zeros(0, np.float32)
        fields = {
            "chunk_id": "chunk_id",
            "doc_id": "doc_id",
            "idx": "index",
            "source": "source",
            "file_type": "file_type",
            "text": "text",
            "start": "start",
            "end": "end",
            "page": "page",
        }
        columns: dict[str, Any] = {col: [getattr(c, attr) for c in chunks] for col, attr in fields.items()}
        columns["terms"] = [list(t) for w in upserts for t in w.terms]
        columns[LEX] = [" ".join(t) for t in columns["terms"]]
        columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), self._dimension)
        return pa.table(columns, schema=schemas(self._dimension)[1])

    def _document_rows(self, infos: list[DocumentInfo]) -> Any:
        import pyarrow as pa

        names = schemas(self._dimension)[0].names
        return pa.table(
            {n: [getattr(i, n) for i in infos] for n in names}, schema=schemas(self._dimension)[0]
        )

    def optimize(self, *, keep: timedelta = timedelta(minutes=10)) -> int:
        """Compact both tables and refresh their indexes, commit, then drop versions older than ``keep``.

        Content is unchanged. The ANN index is trained here once the table is large enough.

        Pruning runs only after the pointer names the compacted versions, so a crash never leaves a
        pointer to a deleted version; ``keep`` protects readers still holding an older snapshot.
        Lance prunes only inside ``optimize``, which must then write nothing new (else the pointer
        would name an old version, open to the prune): a table is pruned only once a pass left it as
        it was, and otherwise at the next compaction.
        """
        pointer = self._read_pointer()
        documents, chunks = self._writable(pointer)
        upgrade(chunks)
        build_ann_if_due(chunks, self.options)
        settled = [settle(table) for table in (documents, chunks)]
        seq = pointer.seq + 1
        Pointer(seq, documents.version, chunks.version, compacted=chunks.version).write(self.path)
        for table, done in zip((documents, chunks), settled, strict=True):
            if done:
                table.optimize(cleanup_older_than=keep)
        return seq

    def versions_since_optimize(self) -> int:
        """Versions of the chunks table committed since the last :meth:`optimize` (a cue to run it).

        Read from the commit pointer, so it costs one small file read; versions that compaction kept
        for readers (``keep``) do not count.
        """
        pointer = self._read_pointer()
        return pointer.chunks - pointer.compacted

    def close(self) -> None:
        self._snapshot = None


def open_store(
    path: Path, *, dimension: int, create: bool = False, options: LanceIndexOptions | None = None
) -> LanceStore:
    """Registry factory: create or open the LanceDB store in ``path`` and check its dimension."""
    store = (
        LanceStore.create(path, dimension=dimension, options=options)
        if create
        else LanceStore(path, options=options)
    )
    if store.dimension != dimension:
        raise StoreError(f"the store in {path} holds {store.dimension}-dim vectors, expected {dimension}")
    return store
