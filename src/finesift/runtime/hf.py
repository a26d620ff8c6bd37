"""Loading Hugging Face checkpoints safely (safetensors only, no remote code) with clear errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from finesift.errors import BackendError, InvalidRequest, MissingDependency
from finesift.runtime.device import torch_device_and_dtype
from finesift.runtime.options import EngineOptions, resolve_attention, resolve_quantized_dtype
from finesift.runtime.quantize import quantize_linear_int8
from finesift.runtime.qwen3 import PackedQwen3, unsupported_reason


def import_torch_stack() -> tuple[Any, Any]:
    """Import torch and transformers, or raise :class:`MissingDependency` naming the extra."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingDependency(
            "torch/transformers", "transformers", "CPU torch: pip install torch==2.13.0"
        ) from exc
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    return torch, transformers


def read_config(path: Path) -> dict[str, Any]:
    """The model's config.json, or a clear error when the directory is not a model."""
    cfg = path / "config.json"
    if not cfg.is_file():
        raise BackendError(f"{path} has no config.json; it is not a Hugging Face model directory")
    try:
        data: dict[str, Any] = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendError(f"{cfg} is unreadable or not JSON: {exc}") from exc
    return data


def check_weights(path: Path) -> None:
    """Refuse pickle-only checkpoints: finesift loads safetensors only."""
    if not any(path.glob("*.safetensors")):
        raise BackendError(
            f"{path} has no .safetensors weights; finesift does not load pickle (.bin) checkpoints. "
            "Convert them with transformers' save_pretrained(safe_serialization=True)."
        )


def revision_of(path: Path) -> str:
    """The hub snapshot hash when the path is in a hub cache, else a content digest of the files."""
    parts = path.resolve().parts
    if "snapshots" in parts[:-1]:
        return parts[parts.index("snapshots") + 1]
    digest = hashlib.sha256()
    for name in sorted(p.name for p in path.iterdir() if p.suffix in (".json", ".safetensors")):
        file = path / name
        digest.update(name.encode())
        digest.update(str(file.stat().st_size).encode())
        with open(file, "rb") as fh:
            digest.update(fh.read(1 << 20))
    return "sha256:" + digest.hexdigest()[:16]


def tokenizer_hash(path: Path) -> str:
    """A digest of the tokenizer files, so a changed tokenizer changes the fingerprint."""
    digest = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        file = path / name
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def model_max_positions(config: dict[str, Any]) -> int:
    return int(config.get("max_position_embeddings") or 32768)


def check_max_length(max_length: int, config: dict[str, Any]) -> int:
    """``max_length`` must be positive and within the model's position limit."""
    limit = model_max_positions(config)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 16 <= max_length <= limit:
        raise InvalidRequest(
            f"max_length must be an integer in 16..{limit} for this model, not {max_length!r}"
        )
    return max_length


def load_tokenizer(path: Path) -> Any:
    """A fast tokenizer with left padding, loaded without remote code."""
    _, transformers = import_torch_stack()
    try:
        tok = transformers.AutoTokenizer.from_pretrained(
            str(path), padding_side="left", trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot load the tokenizer from {path}: {exc}") from exc
    if tok.pad_token_id is None:
        raise BackendError(f"the tokenizer in {path} defines no pad token; Qwen3 uses <|endoftext|>")
    return tok


def load_weights(
    auto_class: Any, path: Path, *, device: str, dtype: Any, attn_implementation: str = "sdpa"
) -> Any:
    """Load a model from safetensors (SDPA attention unless told), in eval mode on ``device``."""
    check_weights(path)
    try:
        model = auto_class.from_pretrained(
            str(path),
            dtype=dtype,
            attn_implementation=attn_implementation,
            use_safetensors=True,
            trust_remote_code=False,
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise BackendError(f"cannot load the model weights from {path}: {exc}") from exc
    return model.to(device).eval()


def placement(device: str, dtype: str, options: EngineOptions) -> tuple[str, Any, str]:
    """(device, torch dtype, attention implementation) for a model run with ``options``."""
    dev, _ = torch_device_and_dtype(device, "float32")
    dev, torch_dtype = torch_device_and_dtype(
        dev, resolve_quantized_dtype(options.quantize, device=dev, dtype=dtype)
    )
    attention = resolve_attention(
        options.attention, device=dev, dtype=str(torch_dtype).removeprefix("torch.")
    )
    return dev, torch_dtype, attention


def maybe_quantize(model: Any, quantize: str) -> Any:
    """``model`` with int8 dynamic linear layers when ``quantize == "int8"``, else unchanged."""
    if quantize != "int8":
        return model
    return quantize_linear_int8(model)


def packed_forward(decoder: Any, options: EngineOptions, device: str, *, chunk_tokens: int = 8192) -> Any:
    """finesift's packed Qwen3 forward over ``decoder``'s weights when it applies, else None.

    "auto" uses it on CPU for unquantized Qwen3 models; "packed" insists and names the reason when
    the model cannot run on it.
    """
    if options.forward == "transformers" or options.quantize != "none":
        return None
    if options.forward == "auto" and device != "cpu":
        return None
    reason = unsupported_reason(decoder)
    if reason is None:
        return PackedQwen3(decoder, chunk_tokens=chunk_tokens, fuse=options.fuse)
    if options.forward == "packed":
        raise InvalidRequest(f"forward 'packed' cannot run this model ({reason}); use forward 'auto'")
    return None
