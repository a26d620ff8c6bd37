"""sentence-transformers for both models: import, model-directory inspection, and the loader shell.

The embedding backend (``SentenceTransformer``) and the reranker backend (``CrossEncoder``) load
the same way; both import from here, so neither reaches into the other's module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finesift.errors import BackendError, MissingDependency
from finesift.runtime import hf
from finesift.runtime.batching import default_token_budget
from finesift.runtime.device import resolve_device, resolve_dtype
from finesift.runtime.local import LocalModel

EXTRA = "sentence-transformers"


def import_sentence_transformers() -> Any:
    try:
        import sentence_transformers
    except ImportError as exc:
        raise MissingDependency("sentence-transformers", EXTRA) from exc
    return sentence_transformers


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


def is_st_directory(path: Path) -> bool:
    """True for a directory with ``modules.json`` whose pooling is not last-token (Qwen3 pools last-token)."""
    if not (path / "modules.json").is_file():
        return False
    mode = pooling_mode(path)
    return mode is None or "lasttoken" not in mode


def choose_dtype(dtype: str, *, device: str, config: dict[str, Any]) -> str:
    """``auto`` keeps fp32 checkpoints in fp32 (parity with published numbers); others follow the device."""
    stored = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    if dtype == "auto" and stored == "float32":
        return "float32"
    return resolve_dtype(dtype, device=device)


class STModel(LocalModel):
    """Loading a sentence-transformers model class from a local directory, for either model."""

    #: What the error message calls the model ("sentence-transformers model", "cross-encoder").
    kind = "sentence-transformers model"

    def _load(  # noqa: PLR0913 - the backends' public keyword arguments, passed through
        self,
        path: str | Path,
        model_class: str,
        *,
        model_id: str | None,
        device: str,
        dtype: str,
        max_length: int | None,
        default_max_length: int,
    ) -> Any:
        """The loaded ``sentence_transformers.<model_class>``; sets path, id, device, dtype and window."""
        st = import_sentence_transformers()
        torch, _ = hf.import_torch_stack()
        self.path = Path(path)
        self._model_id = model_id or str(path)
        self.device = resolve_device(device, cuda_available=torch.cuda.is_available())
        self.dtype = choose_dtype(dtype, device=self.device, config=hf.read_config(self.path))
        model = self._construct(getattr(st, model_class), getattr(torch, self.dtype))
        # sentence-transformers 6 calls it max_seq_length; 5's CrossEncoder, max_length.
        limit = "max_seq_length" if hasattr(model, "max_seq_length") else "max_length"
        model_max = int(getattr(model, limit) or default_max_length)
        self._max_length = min(max_length, model_max) if max_length else model_max
        setattr(model, limit, self._max_length)
        self._revision = hf.revision_of(self.path)
        return model

    def _batch_size(self, token_budget: int | None) -> int:
        """Texts per model call: the token budget over the window."""
        return max(1, (token_budget or default_token_budget(self.device)) // self._max_length)

    def _construct(self, cls: Any, dtype: Any) -> Any:
        hf.check_weights(self.path)
        try:
            return cls(
                str(self.path),
                device=self.device,
                local_files_only=True,
                trust_remote_code=False,
                model_kwargs={"dtype": dtype},
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise BackendError(f"cannot load the {self.kind} from {self.path}: {exc}") from exc
