"""Qwen3-Embedding on a CUDA GPU through vLLM's pooling runner (last-token pooling, no normalisation).

vLLM is imported only when this backend is chosen. Texts go in as token ids from the checkpoint's
own tokenizer (EOS appended, truncated with the EOS kept), so vLLM cannot tokenize differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.local import Qwen3TokenIds, check_eos
from finesift.errors import BackendError
from finesift.hub import resolve_for
from finesift.runtime import hf
from finesift.runtime.vllm import import_vllm
from finesift.settings import EmbeddingSettings, HubSettings


def pooling_llm(vllm: Any, path: Path, *, max_length: int, dtype: str, **extra: Any) -> Any:
    """An ``LLM`` with the pooling runner; LAST pooling without normalisation (finesift normalises)."""
    pooler: Any = {"pooling_type": "LAST", "normalize": False}
    try:
        from vllm.config import PoolerConfig

        pooler = PoolerConfig(**pooler)
    except (ImportError, TypeError):
        pass  # older releases take the plain dict
    kwargs: dict[str, Any] = {
        "model": str(path),
        "max_model_len": max_length,
        "enforce_eager": False,
        "dtype": "auto" if dtype == "auto" else dtype,
        "trust_remote_code": False,
        **extra,
    }
    attempts = (
        {"runner": "pooling", "pooler_config": pooler},
        {"task": "embed", "override_pooler_config": pooler},
    )
    for variant in attempts:  # vLLM renamed these arguments across releases
        try:
            return vllm.LLM(**kwargs, **variant)
        except TypeError:
            continue
    raise BackendError("this vLLM version is not supported; install a release with the pooling runner")


class VllmEmbedder(Qwen3TokenIds):
    """Raw last-token vectors computed by vLLM."""

    def __init__(
        self, path: str | Path, *, model_id: str | None = None, max_length: int = 8192, dtype: str = "auto"
    ) -> None:
        vllm = import_vllm()
        self.path = Path(path)
        self.config = hf.read_config(self.path)
        self._max_length = hf.check_max_length(max_length, self.config)
        self._model_id = model_id or str(path)
        self._dimension = int(self.config["hidden_size"])
        self.tokenizer = hf.load_tokenizer(self.path)
        self.eos_id = check_eos(self.tokenizer)
        self.llm = pooling_llm(vllm, self.path, max_length=max_length, dtype=dtype)
        self._prompt = vllm.inputs.TokensPrompt

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._model_id,
            "revision": hf.revision_of(self.path),
            "dimension": self.dimension,
            "pooling": "last_token",
            "normalized": True,
            "max_length": self._max_length,
            "tokenizer": hf.tokenizer_hash(self.path),
        }

    def _vectors(self, rows: list[list[int]]) -> np.ndarray:
        outputs = self.llm.embed([self._prompt(prompt_token_ids=r) for r in rows], use_tqdm=False)
        return np.array([o.outputs.embedding for o in outputs], dtype=np.float32)


def create(settings: EmbeddingSettings, hub: HubSettings) -> VllmEmbedder:
    """Registry factory: resolve the model through the hub, then start vLLM on it."""
    import_vllm()
    path = resolve_for(settings, hub)
    return VllmEmbedder(path, model_id=settings.model, max_length=settings.max_length, dtype=settings.dtype)
