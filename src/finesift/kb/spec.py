"""What a knowledge base is created with (models, dimension, instruction, chunking); building its models."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from finesift.embedding.embedder import Embedder
from finesift.embedding.factory import build_embedder
from finesift.embedding.instructions import DEFAULT_TASK, resolve_instruction
from finesift.errors import Conflict, InvalidRequest
from finesift.kb.manifest import Manifest
from finesift.rerank.base import Reranker
from finesift.rerank.factory import build_reranker
from finesift.settings import Settings
from finesift.store.registry import normalize_store_uri

#: A reranker model name that means "no reranker".
NO_RERANKER = ("", "none")


@dataclass(frozen=True)
class KBSpec:
    """The choices recorded with a new KB. ``dim=None`` is the model's full dimension."""

    embedding_model: str
    reranker_model: str | None
    dim: int | None = None
    instruction: str | None = None
    chunk_size: int = 400
    chunk_overlap: int = 64
    store: str = "lancedb"
    embedding_revision: str | None = None
    max_length: int = 8192

    @classmethod
    def from_settings(cls, settings: Settings, **choices: Any) -> KBSpec:
        """Defaults from ``settings`` (embedding, reranker, kb sections), then ``choices`` (None ignored)."""
        emb, kb = settings.embedding, settings.kb
        spec = cls(
            emb.model,
            settings.reranker.model,
            None,
            emb.instruction,
            kb.chunk_size,
            kb.chunk_overlap,
            kb.store,
            emb.revision,
            emb.max_length,
        )
        spec = dataclasses.replace(spec, **{k: v for k, v in choices.items() if v is not None})
        spec = dataclasses.replace(spec, store=normalize_store_uri(spec.store))
        if spec.reranker_model is not None and spec.reranker_model.strip().lower() in NO_RERANKER:
            spec = dataclasses.replace(spec, reranker_model=None)
        if spec.chunk_size < 16 or not 0 <= spec.chunk_overlap < spec.chunk_size:
            raise InvalidRequest(
                f"chunk size must be >= 16 and 0 <= overlap < size (got {spec.chunk_size}, "
                f"{spec.chunk_overlap})"
            )
        return spec

    @classmethod
    def from_manifest(cls, m: Manifest) -> KBSpec:
        return cls(
            m.embedding_model,
            m.reranker_model,
            m.dim,
            m.instruction,
            m.chunk_size,
            m.chunk_overlap,
            m.store,
            m.embedding_revision,
            m.max_length,
        )

    def manifest(self, name: str, embedder: Embedder, dim: int, *, created_at: str) -> Manifest:
        """The manifest recording this spec and the embedder's fingerprint."""
        return Manifest(
            name=name, store=self.store, embedding_model=self.embedding_model,
            embedding_revision=self.embedding_revision, dim=dim, instruction=embedder.default_instruction,
            max_length=embedder.info.max_length, reranker_model=self.reranker_model,
            chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap,
            fingerprint={**embedder.fingerprint(), "dim": dim}, created_at=created_at,
        )  # fmt: skip


def check_choices(m: Manifest, choices: dict[str, Any]) -> None:
    """Refuse explicit choices (CLI flags) that contradict what the KB was created with."""
    recorded = dataclasses.asdict(KBSpec.from_manifest(m))
    for key, value in choices.items():
        if value is None:
            continue
        have = recorded.get(key)
        if key == "instruction":
            value = resolve_instruction(value, default=DEFAULT_TASK)
        if key == "reranker_model" and str(value).strip().lower() in NO_RERANKER:
            value = None
        if value != have:
            flag = "--" + key.replace("_", "-")
            raise Conflict(
                f"knowledge base {m.name!r} was created with {flag} {have!r}, not {value!r}; omit "
                f"{flag}, or index into a new knowledge base"
            )


def build_kb_embedder(spec: KBSpec, settings: Settings) -> Embedder:
    """The spec's embedding model with the runtime options (device, dtype, backend) of ``settings``."""
    options = {
        "model": spec.embedding_model,
        "revision": spec.embedding_revision,
        "instruction": spec.instruction,
        "max_length": spec.max_length,
    }
    section = settings.embedding.model_validate({**settings.embedding.model_dump(), **options})
    return build_embedder(section, settings.hub)


def build_kb_reranker(model: str, settings: Settings) -> Reranker:
    """The KB's reranker with the runtime options of ``settings``."""
    section = settings.reranker.model_validate({**settings.reranker.model_dump(), "model": model})
    return build_reranker(section, settings.hub)
