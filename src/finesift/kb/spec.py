"""What a knowledge base is created with (models, dimension, instruction, chunking); building its models."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finesift.embedding.embedder import Embedder
from finesift.embedding.factory import build_embedder
from finesift.embedding.instructions import DEFAULT_TASK, resolve_instruction
from finesift.errors import Conflict, InvalidRequest, NotFound
from finesift.hub import is_local, looks_like_hub_id, parse_gguf_ref, resolve_model
from finesift.kb.manifest import Manifest
from finesift.rerank.base import Reranker
from finesift.rerank.factory import build_reranker
from finesift.settings import DEFAULT_CHUNK_SIZE, NO_MODEL, EmbeddingSettings, Settings
from finesift.store.registry import normalize_store_uri

log = logging.getLogger(__name__)

#: A reranker model name that means "no reranker".
NO_RERANKER = NO_MODEL
#: Tokens kept free below the model's window besides its special tokens: chunks are packed from pieces
#: counted one by one, and the joined text may tokenize a little longer.
CHUNK_MARGIN = 4
MIN_CHUNK_SIZE = 16


def fit_chunk_size(requested: int | None, overlap: int, *, max_input: int, overhead: int) -> tuple[int, int]:
    """(chunk size, overlap) for an embedder reading ``max_input`` tokens, ``overhead`` of them special.

    ``requested=None`` derives the size: at most :data:`DEFAULT_CHUNK_SIZE`, and small enough that a
    chunk plus the special tokens fits the window (documents carry no instruction), so dense search
    sees every chunk whole; the overlap then shrinks to a quarter of the size if it is larger. An
    explicit size is kept, with a warning when chunks would be truncated.
    """
    fits = max(max_input - overhead - CHUNK_MARGIN, MIN_CHUNK_SIZE)
    if requested is None:
        size = min(DEFAULT_CHUNK_SIZE, fits)
        return size, overlap if overlap < size // 2 else size // 4
    if requested > fits:
        log.warning(
            "chunk size %d exceeds what the embedding model reads (%d tokens with its special tokens); "
            "the tail of long chunks will be invisible to dense search: use --chunk-size %d or less",
            requested, max_input, fits,
        )  # fmt: skip
    return requested, overlap


@dataclass(frozen=True)
class KBSpec:
    """The choices recorded with a new KB. ``dim=None`` is the model's full dimension."""

    embedding_model: str
    reranker_model: str | None
    dim: int | None = None
    instruction: str | None = None
    #: None: derived from the embedding model's window by :meth:`fitted`.
    chunk_size: int | None = None
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
        if spec.reranker_model is not None and spec.reranker_model.strip().lower() in NO_RERANKER:
            spec = dataclasses.replace(spec, reranker_model=None)
        spec = dataclasses.replace(
            spec,
            store=normalize_store_uri(spec.store),
            embedding_model=absolute_model(spec.embedding_model) or spec.embedding_model,
            reranker_model=absolute_model(spec.reranker_model),
        )
        size = spec.chunk_size
        bad_size = size is not None and (size < MIN_CHUNK_SIZE or spec.chunk_overlap >= size)
        if spec.chunk_overlap < 0 or bad_size:
            raise InvalidRequest(
                f"chunk size must be >= {MIN_CHUNK_SIZE} and 0 <= overlap < size (got {size}, "
                f"{spec.chunk_overlap})"
            )
        return spec

    def fitted(self, embedder: Embedder) -> KBSpec:
        """This spec with the chunk size fitted to ``embedder``'s window (see :func:`fit_chunk_size`)."""
        overhead = embedder.count_tokens([""])[0]
        size, overlap = fit_chunk_size(
            self.chunk_size, self.chunk_overlap, max_input=embedder.info.max_length, overhead=overhead
        )
        return dataclasses.replace(self, chunk_size=size, chunk_overlap=overlap)

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
        assert self.chunk_size is not None, "fit the spec to its embedder first"
        return Manifest(
            name=name, store=self.store, embedding_model=self.embedding_model,
            embedding_revision=self.embedding_revision, dim=dim, instruction=embedder.default_instruction,
            max_length=embedder.info.max_length, reranker_model=self.reranker_model,
            chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap,
            fingerprint={**embedder.fingerprint(), "dim": dim}, created_at=created_at,
        )  # fmt: skip


def absolute_model(model: str | None) -> str | None:
    """A model given as a relative path (``./emb-ft``), made absolute: a KB is searched from any folder."""
    if not model or os.path.isabs(model) or model == "fake" or model.startswith("fake:"):
        return model
    path = Path(model).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() == ".gguf"):
        return str(path.resolve())
    return model


def without_missing_reranker(spec: KBSpec, settings: Settings, *, chosen: bool) -> KBSpec:
    """``spec``, offline, without a hub reranker that is not in the cache (a search would fail on it).

    A reranker ``chosen`` explicitly raises :class:`NotFound`; the default one is left out with a
    warning, so the KB's searches are not reranked.
    """
    model, section = spec.reranker_model, settings.reranker
    hub_model = model is not None and looks_like_hub_id(model) and not is_local(model)
    local_backend = section.backend in ("auto", "transformers", "sentence-transformers") and not section.url
    if not (settings.hub.offline and hub_model and local_backend) or parse_gguf_ref(str(model)):
        return spec
    hub = settings.hub
    try:
        resolve_model(
            str(model), hub=hub.source, revision=section.revision, cache_dir=hub.cache_dir, offline=True
        )
    except NotFound as exc:
        if chosen:
            raise NotFound(f"{exc} Or index without a reranker: --reranker-model none") from exc
        log.warning(
            "the default reranker %s is not available offline; this knowledge base records no reranker "
            "(searches are not reranked): download it and pass --reranker-model %s to have one",
            model, model,
        )  # fmt: skip
        return dataclasses.replace(spec, reranker_model=None)
    return spec


def new_kb_spec(settings: Settings, choices: dict[str, Any]) -> KBSpec:
    """The spec of a KB created from ``settings`` and explicit ``choices`` (``None``: not chosen)."""
    spec = KBSpec.from_settings(settings, **choices)
    return without_missing_reranker(spec, settings, chosen=choices.get("reranker_model") is not None)


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
        if key.endswith("_model") and value is not None and absolute_model(value) == have:
            continue  # the relative path of the recorded model
        if value != have:
            flag = "--" + key.replace("_", "-")
            raise Conflict(
                f"knowledge base {m.name!r} was created with {flag} {have!r}, not {value!r}; omit "
                f"{flag}, or index into a new knowledge base"
            )


def kb_embedding_settings(spec: KBSpec, settings: Settings) -> EmbeddingSettings:
    """The ``embedding`` section for the spec's model, with the runtime options (device, dtype, backend)."""
    options = {
        "model": spec.embedding_model,
        "revision": spec.embedding_revision,
        "instruction": spec.instruction,
        "max_length": spec.max_length,
    }
    return settings.embedding.model_validate({**settings.embedding.model_dump(), **options})


def build_kb_embedder(spec: KBSpec, settings: Settings) -> Embedder:
    """The spec's embedding model with the runtime options (device, dtype, backend) of ``settings``."""
    return build_embedder(kb_embedding_settings(spec, settings), settings.hub)


def build_kb_reranker(model: str, settings: Settings) -> Reranker:
    """The KB's reranker with the runtime options of ``settings``."""
    section = settings.reranker.model_validate({**settings.reranker.model_dump(), "model": model})
    return build_reranker(section, settings.hub)
