"""Indexing as a Ray Data job (``finesift index --engine ray``): plain ``index``'s pipeline, spread out.

::

    files (driver) -> read, hash, parse, chunk (Ray tasks) -> embed (Ray actor pool) -> commit (driver)

The driver lists the files, holds the KB's writer lock and its one open store, and hands each file
with its stored record to a Ray dataset. Tasks read, hash, parse and chunk each file with the code,
caps and parser processes of :meth:`KnowledgeBase.add` (an :class:`~finesift.kb.indexing.IndexJob`
without a store), counting tokens with the model's tokenizer; an unchanged file stops there. An actor
pool embeds the chunks, one model replica per actor (a GPU each when the cluster has GPUs), or through
the KB's remote endpoints when ``--embedding-url`` routes embedding there. The driver commits the
results in groups of about ``kb.commit_chunks`` chunks through :meth:`IndexJob.write`, the commit of
plain indexing, so chunk ids, records, fingerprints and crash safety are those of ``finesift index``:
a killed job keeps what it committed, and a re-run skips that by content hash.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from finesift.embedding.embedder import Embedder
from finesift.errors import BackendError, MissingDependency
from finesift.kb import manifest as mf
from finesift.kb.indexing import (
    IndexJob,
    Progress,
    configured_job,
    content_tokens,
    doc_id_for,
    find_files,
    source_name,
    source_path,
)
from finesift.kb.knowledge_base import KnowledgeBase, check_embedder
from finesift.kb.spec import KBSpec, build_kb_embedder, kb_embedding_settings
from finesift.settings import RaySettings, Settings
from finesift.store.base import VectorStore
from finesift.types import Chunk, DocumentInfo, IndexReport

log = logging.getLogger(__name__)

#: What a parse task hands on per file: ("ready", info, chunks, updated[, vectors]),
#: ("failed", Failure) or ("unchanged",).
Outcome = tuple[Any, ...]


def require_ray() -> Any:
    """The ``ray`` module (with Ray Data), or :class:`MissingDependency` naming the extra."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingDependency("ray", "ray", "needed by --engine ray") from exc
    return ray


# ---- parse and chunk: Ray tasks ----------------------------------------------------------------


@dataclass
class _Preparer(IndexJob):
    """An :class:`IndexJob` that only reads, parses and chunks (in a Ray task, with no store)."""

    def __post_init__(self) -> None:
        self.known = {}


def _no_embed(texts: list[str]) -> np.ndarray:
    raise AssertionError("a parse task never embeds")


_preparers: dict[str, _Preparer] = {}


def _preparer(settings: Settings, manifest: mf.Manifest) -> _Preparer:
    """This worker process's preparer for the KB: the tokenizer and parser processes start once."""
    key = f"{manifest.name}\0{manifest.pipeline}\0{settings.model_dump_json()}"
    if key not in _preparers:
        counter: list[Callable[[Sequence[str]], list[int]]] = []

        def count_tokens(texts: Sequence[str]) -> list[int]:
            if not counter:  # the tokenizer loads when a file needs chunking, not for unchanged ones
                from finesift.embedding.pool import local_token_counter

                section = kb_embedding_settings(KBSpec.from_manifest(manifest), settings)
                counter.append(local_token_counter(section, settings.hub))
            return content_tokens(counter[0], texts)

        store = cast(VectorStore, None)  # never used: the driver writes
        _preparers.clear()  # one KB per job: keep the last one only
        _preparers[key] = configured_job(_Preparer, manifest, settings.kb, store, _no_embed, count_tokens)
    return _preparers[key]


def _prepare_one(job: _Preparer, source: str, old: DocumentInfo | None) -> Outcome:
    job.known = {old.doc_id: old} if old is not None else {}
    job.failures.clear()
    job.stored.clear()
    data = job._read(source_path(source), source)
    prepared = None if data is None else job.prepare(source, data, loader=lambda: job.parse(data, source))
    if prepared is not None:
        return ("ready", *prepared)
    if job.failures:
        return ("failed", job.failures[-1])
    return ("unchanged",)


def parse_and_chunk(batch: dict[str, Any], settings: Settings, manifest: mf.Manifest) -> dict[str, list[Any]]:
    """A Ray task over a batch of ``{source, old}`` rows: one pickled :data:`Outcome` per file."""
    job = _preparer(settings, manifest)
    sources = [str(s) for s in batch["source"]]
    payloads = [
        pickle.dumps(_prepare_one(job, source, pickle.loads(old)))
        for source, old in zip(sources, batch["old"], strict=True)
    ]
    return {"source": sources, "payload": payloads}


# ---- embed: a Ray actor pool -------------------------------------------------------------------


class EmbedActor:
    """One replica of the KB's embedder (fingerprint-checked); adds each ready file's chunk vectors."""

    def __init__(self, settings: Settings, manifest: mf.Manifest) -> None:
        self.settings, self.manifest = settings, manifest
        self.embedder: Embedder | None = None  # loaded for the first chunks: a re-run may have none

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.manifest.dim), np.float32)
        if self.embedder is None:
            embedder = build_kb_embedder(KBSpec.from_manifest(self.manifest), self.settings)
            check_embedder(self.manifest, embedder)
            self.embedder = embedder
        vectors: np.ndarray = self.embedder.embed_documents(texts, dim=self.manifest.dim)
        return vectors

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        outcomes = [pickle.loads(p) for p in batch["payload"]]
        vectors = self._embed([c.text for o in outcomes if o[0] == "ready" for c in o[2]])
        out, offset = [], 0
        for outcome in outcomes:
            if outcome[0] == "ready":
                n = len(outcome[2])
                outcome = (*outcome, vectors[offset : offset + n])
                offset += n
            out.append(pickle.dumps(outcome))
        return {"source": [str(s) for s in batch["source"]], "payload": out}


# ---- write: the driver -------------------------------------------------------------------------


@dataclass
class _Writer:
    """Commits ready files in groups of about ``commit_chunks`` chunks; counts the others."""

    job: IndexJob
    commit_chunks: int
    pending: list[tuple[DocumentInfo, list[Chunk], bool]] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    chunks: int = 0

    def take(self, source: str, outcome: Outcome) -> None:
        if outcome[0] == "unchanged":
            self.job._count("documents_unchanged")
            self.job.stored.append(source)
        elif outcome[0] == "failed":
            self.job.fail(outcome[1])
        else:
            _, info, chunks, updated, vectors = outcome
            self.pending.append((info, chunks, updated))
            self.vectors.append(vectors)
            self.chunks += len(chunks)
            if self.chunks >= self.commit_chunks:
                self.flush()

    def flush(self) -> None:
        if self.pending:
            self.job.write(self.pending, np.concatenate(self.vectors))
        self.pending, self.vectors, self.chunks = [], [], 0


def _connect(ray: Any, config: RaySettings) -> bool:
    """Join ``config.address`` (default: start a local runtime) unless Ray is up; whether we started it."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"runtime_env": config.runtime_env} if config.runtime_env else {}
    if config.address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=config.address, **options)
    except (ConnectionError, RuntimeError) as exc:
        where = config.address or "a local runtime"
        raise BackendError(f"cannot start Ray ({where}): {exc}; check --ray-address") from exc
    return True


def _dataset(ray: Any, kb: KnowledgeBase, job: IndexJob, files: list[Path]) -> Any:
    """The Ray dataset of outcomes: files -> parse-and-chunk tasks -> embedding actors."""
    settings, config = kb.settings, kb.settings.ray
    names = [source_name(f) for f in files]
    rows = [{"source": name, "old": pickle.dumps(job.known.get(doc_id_for(name)))} for name in names]
    context = {"settings": settings, "manifest": kb.manifest}
    gpus = config.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    dataset = ray.data.from_items(rows, override_num_blocks=math.ceil(len(rows) / config.batch_docs))
    # Parse tasks retry a batch whose worker died; the distinct remote args also keep Ray from fusing
    # parsing into the embedding actors (one actor would then parse everything).
    dataset = dataset.map_batches(
        parse_and_chunk,
        fn_kwargs=context,
        batch_size=config.batch_docs,
        compute=ray.data.TaskPoolStrategy(size=config.parse_tasks),
        max_retries=3,
    )
    return dataset.map_batches(
        EmbedActor,
        fn_constructor_kwargs=context,
        batch_size=config.batch_docs,
        compute=ray.data.ActorPoolStrategy(size=config.embed_actors),
        num_gpus=gpus or None,
    )


def add_with_ray(
    kb: KnowledgeBase, paths: Sequence[str | Path], *, prune: bool = False, progress: Progress | None = None
) -> IndexReport:
    """What :meth:`KnowledgeBase.add` does, as a Ray Data job; ``progress`` counts files written.

    Joins the cluster of ``kb.settings.ray`` (or the Ray this process already started), and stops a
    local runtime it started itself.
    """
    ray = require_ray()
    found = find_files(paths)
    files = found.files
    with kb.writing() as job:
        for failure in found.skipped:
            job.fail(failure)
        if files:
            started = _connect(ray, kb.settings.ray)
            try:
                writer = _Writer(job, kb.settings.kb.commit_chunks)
                for done, row in enumerate(_dataset(ray, kb, job, files).iter_rows(), start=1):
                    writer.take(row["source"], pickle.loads(row["payload"]))
                    if progress is not None:
                        progress(done, len(files), row["source"])
                writer.flush()
            finally:
                if started:
                    ray.shutdown()
        if prune:
            job.prune([Path(p).expanduser().absolute() for p in paths], {source_name(f) for f in files})
        return job.report()


__all__ = ["EmbedActor", "add_with_ray", "parse_and_chunk", "require_ray"]
