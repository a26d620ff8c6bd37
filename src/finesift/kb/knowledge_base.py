"""The knowledge base: documents in, cited hits out. The API the CLI, the server and the answer step use.

::

    kb = KnowledgeBase.create("handbook", settings=settings)      # records models, dim, instruction
    report = kb.add(["./docs"], prune=True)                        # incremental, crash-safe
    hits = kb.search("如何优化数据库", SearchOptions(top_k=5))      # hybrid recall -> rerank
    kb.delete([hits[0].doc_id])

A KB records its embedder's fingerprint at creation; opening it with an embedder whose vectors
differ raises :class:`~finesift.errors.Conflict`. Writes (``add``, ``add_documents``, ``delete``)
take the KB's writer lock (a second writer fails at once with :class:`Conflict`); searches read the
last committed snapshot and never wait. One ``KnowledgeBase`` object may serve concurrent searches.
Every write compacts the store once ``kb.optimize_versions`` versions piled up since the last
compaction, unless the KB was opened with ``auto_optimize=False`` (the server compacts in the
background instead, with :meth:`optimize_due` and :meth:`optimize`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.embedder import Embedder, validate_dim
from finesift.errors import Conflict, InvalidRequest, NotFound
from finesift.kb import manifest as mf
from finesift.kb.compaction import Compaction
from finesift.kb.indexing import (
    IndexJob,
    Progress,
    configured_job,
    content_tokens,
    doc_id_for,
    find_files,
    prepared_loader,
    source_name,
)
from finesift.kb.spec import KBSpec, build_kb_embedder, build_kb_reranker, check_choices, new_kb_spec
from finesift.kb.stores import create_kb_dir, drop_kb_dir, lance_options, store_token
from finesift.rerank.base import Reranker
from finesift.retrieval.pipeline import RetrievalPipeline, SearchOptions
from finesift.retrieval.request import SearchRequest
from finesift.settings import Settings
from finesift.store.base import StoreSnapshot, VectorStore
from finesift.store.registry import open_store
from finesift.types import Document, DocumentInfo, Hit, IndexReport


def check_embedder(manifest: mf.Manifest, embedder: Embedder) -> None:
    """:class:`Conflict` unless ``embedder``'s vectors are those the KB was built with."""
    current = {**embedder.fingerprint(), "dim": validate_dim(manifest.dim, embedder.dimension)}
    mf.check_fingerprint(manifest.name, manifest.fingerprint, current)


class KnowledgeBase:
    """A named collection of documents with an embedded vector store. Build it with ``create``/``open``."""

    def __init__(
        self,
        path: Path,
        manifest: mf.Manifest,
        store: VectorStore,
        *,
        settings: Settings,
        models: dict[str, Any],
        auto_optimize: bool = True,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.store = store
        self.settings = settings
        self.auto_optimize = auto_optimize
        self.compaction = Compaction(store, settings.kb, path, manifest.name, auto=auto_optimize)
        self._models = models
        # The task recorded at creation reaches both models, whatever their own defaults are.
        self._pipeline = RetrievalPipeline(
            embed_query=self._embed_query, reranker=self._get_reranker, instruction=manifest.instruction
        )

    @property
    def name(self) -> str:
        return self.manifest.name

    # ---- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        *,
        settings: Settings | None = None,
        spec: KBSpec | None = None,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
    ) -> KnowledgeBase:
        """A new, empty KB under ``settings.home``; :class:`Conflict` if the name is taken.

        ``spec`` (default: from ``settings``) chooses the models, dimension, instruction and chunking;
        a given ``embedder``/``reranker`` is used instead of loading the spec's models.
        """
        settings = settings or Settings()
        if spec is None:
            spec = KBSpec.from_settings(settings, embedding_model=embedder.model_id if embedder else None)
        target = mf.kb_dir(settings.home, name)
        if target.exists():
            raise Conflict(f"knowledge base {name!r} already exists; use it, or drop it first")
        embedder = embedder or build_kb_embedder(spec, settings)
        spec = spec.fitted(embedder)
        dim = validate_dim(spec.dim, embedder.dimension)
        manifest = spec.manifest(
            name, embedder, dim, created_at=datetime.now(UTC).isoformat(timespec="seconds")
        )
        create_kb_dir(target, manifest, settings)
        return cls.open(name, settings=settings, embedder=embedder, reranker=reranker)

    @classmethod
    def open(
        cls,
        name: str,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
        rerank: bool = True,
        auto_optimize: bool = True,
    ) -> KnowledgeBase:
        """An existing KB; :class:`NotFound` if unknown, :class:`Conflict` if ``embedder`` is incompatible.

        ``rerank=False`` never reranks, even if the KB records a reranker (a server that serves none).
        ``auto_optimize=False``: writes leave compaction to the caller (:meth:`optimize_due`).
        """
        settings = settings or Settings()
        path = mf.kb_dir(settings.home, name)
        manifest = mf.read_manifest(path, name)
        store = open_store(
            manifest.store,
            mf.store_path(path, manifest),
            dimension=manifest.dim,
            token=store_token(settings),
            lance=lance_options(settings),
        )
        kb = cls(
            path, manifest, store, settings=settings, models={"rerank": rerank}, auto_optimize=auto_optimize
        )
        if embedder is None and reranker is None:
            return kb
        try:
            return kb.with_models(embedder=embedder, reranker=reranker, rerank=rerank)
        except BaseException:
            store.close()  # a server store holds connections
            raise

    def with_models(
        self, *, embedder: Embedder | None, reranker: Reranker | None, rerank: bool = True
    ) -> KnowledgeBase:
        """This KB over the same open store, with these models (``None``: the recorded one, loaded on use).

        :class:`Conflict` if ``embedder``'s vectors differ from the KB's. ``rerank=False`` never reranks.
        Both objects share the store: close only one of them.
        """
        kb = KnowledgeBase(
            self.path,
            self.manifest,
            self.store,
            settings=self.settings,
            models={"reranker": reranker, "rerank": rerank},
            auto_optimize=self.auto_optimize,
        )
        if embedder is not None:
            kb._check_embedder(embedder)
        return kb

    @staticmethod
    def exists(name: str, *, settings: Settings | None = None) -> bool:
        settings = settings or Settings()
        return (mf.kb_dir(settings.home, name) / mf.MANIFEST).is_file()

    @staticmethod
    def names(*, settings: Settings | None = None) -> list[str]:
        """The knowledge bases under ``settings.home``, sorted."""
        return mf.list_names((settings or Settings()).home)

    @staticmethod
    def drop(name: str, *, settings: Settings | None = None) -> None:
        """Delete a KB and its files (refused while a writer holds it)."""
        settings = settings or Settings()
        drop_kb_dir(mf.kb_dir(settings.home, name), name, settings)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- models ---------------------------------------------------------------------------------

    def _check_embedder(self, embedder: Embedder) -> None:
        check_embedder(self.manifest, embedder)
        self._models["embedder"] = embedder

    @property
    def embedder(self) -> Embedder:
        """The KB's embedder (loaded on first use from the recorded model, then fingerprint-checked)."""
        if self._models.get("embedder") is None:
            self._check_embedder(build_kb_embedder(KBSpec.from_manifest(self.manifest), self.settings))
        embedder: Embedder = self._models["embedder"]
        return embedder

    @property
    def reranks(self) -> bool:
        """Whether searches that ask for reranking get it (the KB records a reranker, and it is not off)."""
        return bool(self.manifest.reranker_model) and self._models.get("rerank", True)

    def _get_reranker(self) -> Reranker | None:
        if not self.reranks:
            return None
        if self._models.get("reranker") is None and self.manifest.reranker_model:
            self._models["reranker"] = build_kb_reranker(self.manifest.reranker_model, self.settings)
        reranker: Reranker | None = self._models.get("reranker")
        return reranker

    def _embed_query(self, query: str) -> np.ndarray:
        vectors: np.ndarray = self.embedder.embed_queries(
            [query], instruction=self.manifest.instruction, dim=self.manifest.dim
        )
        return vectors[0]

    def _embed_documents(self, texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = self.embedder.embed_documents(texts, dim=self.manifest.dim)
        return vectors

    def _count_tokens(self, texts: Sequence[str]) -> list[int]:
        return content_tokens(self.embedder.count_tokens, texts)

    # ---- writes ---------------------------------------------------------------------------------

    def _job(self) -> IndexJob:
        return configured_job(
            IndexJob, self.manifest, self.settings.kb, self.store, self._embed_documents, self._count_tokens
        )

    @contextlib.contextmanager
    def writing(self) -> Iterator[IndexJob]:
        """An :class:`IndexJob` over this KB with the writer lock held; compacts when due afterwards."""
        with mf.writer_lock(self.path, self.name):
            yield self._job()
            self.compaction.after_write()

    def add(
        self, paths: Sequence[str | Path], *, prune: bool = False, progress: Progress | None = None
    ) -> IndexReport:
        """Index files and folders (recursively); unchanged files cost nothing; ``prune`` removes
        documents whose files under ``paths`` are gone. Unreadable files are reported, not raised."""
        found = find_files(paths)
        files = found.files
        with mf.writer_lock(self.path, self.name):
            job = self._job()
            for failure in found.skipped:
                job.fail(failure)
            for done, file in enumerate(files, start=1):
                job.add_file(file)
                if progress is not None:
                    progress(done, len(files), source_name(file))
            job.flush()
            if prune:
                job.prune([Path(p).expanduser().absolute() for p in paths], {source_name(f) for f in files})
            self.compaction.after_write()
            return job.report()

    def add_documents(self, documents: Sequence[Document]) -> IndexReport:
        """Index already loaded documents (e.g. uploads); ``source`` names each and must be unique."""
        sources = [d.source for d in documents]
        if len(set(sources)) != len(sources) or not all(s.strip() for s in sources):
            raise InvalidRequest("every document needs a non-empty, unique source")
        with mf.writer_lock(self.path, self.name):
            job = self._job()
            for doc in documents:
                job.add_bytes(
                    doc.source, doc.text.encode("utf-8", "surrogatepass"), loader=prepared_loader(doc)
                )
            job.flush()
            self.compaction.after_write()
            return job.report()

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Remove documents by id (or by source path); :class:`NotFound` names any unknown one."""
        known = {d.doc_id: d for d in self.documents()}
        by_source = {d.source: d.doc_id for d in known.values()}
        ids = [
            i
            if i in known
            else by_source.get(i, by_source.get(source_name(Path(i).expanduser().absolute()), ""))
            for i in doc_ids
        ]
        missing = [raw for raw, i in zip(doc_ids, ids, strict=True) if not i]
        if missing:
            raise NotFound(
                f"no document {missing[0]!r} in knowledge base {self.name!r}; see `finesift kb info`"
            )
        with mf.writer_lock(self.path, self.name):
            self.store.commit(deletes=ids)
            self.compaction.after_write()
        return len(ids)

    def optimize_due(self) -> bool:
        """Whether ``kb.optimize_versions`` store versions were written since the last compaction."""
        return self.compaction.due()

    def optimize(self) -> None:
        """Compact the store (content unchanged; versions older than ``kb.optimize_keep`` s are pruned).

        Takes the writer lock (:class:`Conflict` while another writer holds it); a no-op for stores
        that compact themselves.
        """
        self.compaction.run()

    # ---- reads ----------------------------------------------------------------------------------

    def snapshot(self) -> StoreSnapshot:
        """The last committed state, frozen (use one snapshot for several reads that must agree)."""
        return self.store.snapshot()

    def documents(self) -> list[DocumentInfo]:
        """Every document, sorted by source."""
        return self.snapshot().documents()

    def search(self, query: str, options: SearchOptions | None = None) -> list[Hit]:
        """The best hits for ``query`` with citations (doc id, source, offsets, page), best first."""
        return self._pipeline.search(self.snapshot(), query, options or SearchOptions())

    def run_search(self, request: SearchRequest) -> list[Hit]:
        """:meth:`search` for a request built by :func:`~finesift.retrieval.request.build_search`."""
        return self._pipeline.run(self.snapshot(), request)

    def info(self) -> dict[str, Any]:
        """A JSON-safe summary: models, dimension, chunking, counts."""
        snap = self.snapshot()
        m = self.manifest
        return {
            "name": m.name, "path": str(self.path), "store": m.store, "embedding_model": m.embedding_model,
            "reranker_model": m.reranker_model, "dim": m.dim, "instruction": m.instruction,
            "chunk_size": m.chunk_size, "chunk_overlap": m.chunk_overlap, "created_at": m.created_at,
            "documents": len(snap.documents()), "chunks": snap.count_chunks(), "version": snap.version,
            "fingerprint": m.fingerprint,
        }  # fmt: skip


def open_or_create(name: str, *, settings: Settings, choices: dict[str, Any] | None = None) -> KnowledgeBase:
    """Open ``name``, or create it from ``settings`` plus ``choices`` (KBSpec fields, ``None`` = default).

    Explicit ``choices`` that contradict an existing KB's recorded ones raise :class:`Conflict`.
    """
    choices = choices or {}
    if not KnowledgeBase.exists(name, settings=settings):
        return KnowledgeBase.create(name, settings=settings, spec=new_kb_spec(settings, choices))
    kb = KnowledgeBase.open(name, settings=settings)
    check_choices(kb.manifest, choices)
    return kb


__all__ = ["KnowledgeBase", "doc_id_for", "open_or_create"]
