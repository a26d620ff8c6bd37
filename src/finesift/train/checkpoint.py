"""Saving what training produces: ordinary model directories, resumable state, and the lineage JSON.

A saved directory is the base model's directory with new weights: tokenizer, config and the
sentence-transformers files are copied, the trained transformer weights are written by transformers
(safetensors, LoRA merged), and ``finesift-lineage.json`` records where it came from. Checkpoints
(``checkpoint-N``) are built in a hidden temporary directory and renamed into place, so a process
killed at any moment leaves either the whole checkpoint or none; ``finesift-train-state.pt`` inside
holds the optimizer, scheduler, RNG and adapter state that ``--resume`` reads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from finesift.errors import Conflict, InvalidRequest

LINEAGE = "finesift-lineage.json"
STATE = "finesift-train-state.pt"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt")
_SKIP_TOP = re.compile(r"^(checkpoint-\d+|onnx|openvino|\..*)$")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def transformer_dir(base: Path) -> str:
    """Where a sentence-transformers model keeps its Transformer module ("" for the root)."""
    try:
        modules = json.loads((base / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    for module in modules if isinstance(modules, list) else []:
        if isinstance(module, dict) and str(module.get("type", "")).endswith(".Transformer"):
            return str(module.get("path", ""))
    return ""


def copy_support_files(base: Path, out: Path) -> None:
    """Every file of ``base`` except the trained module's weights, exports, checkpoints and lineage."""
    weights_at = Path(transformer_dir(base))
    for src in sorted(base.rglob("*")):
        rel = src.relative_to(base)
        if src.is_dir() or _SKIP_TOP.match(rel.parts[0]) or src.name in (LINEAGE, STATE, "README.md"):
            continue
        is_weight = src.name.endswith(WEIGHT_SUFFIXES) or src.name.endswith(".index.json")
        if is_weight and rel.parent == weights_at:
            continue
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out / rel)


def _is_peft(core: Any) -> bool:
    return hasattr(core, "peft_config") and hasattr(core, "get_base_model")


def bare_module(core: Any) -> Any:
    """The transformers module under a peft wrapper (``core`` itself when there is none)."""
    return core.get_base_model() if _is_peft(core) else core


def merged_state_dict(core: Any) -> dict[str, Any]:
    """The module's weights with LoRA deltas added (W + BA·scale); plain weights when not LoRA.

    LoRA layers are found by type, not through the wrapper, so layers peft injected into a module
    whose wrapper was lost are merged too (never saved as ``base_layer``/``lora_A`` keys).
    """
    base = bare_module(core)
    state = base.state_dict()
    if not any("lora_" in key for key in state):
        return {k: v.detach() for k, v in state.items()}
    from peft.tuners.lora import Linear as LoraLinear

    deltas: dict[str, Any] = {}
    for name, module in base.named_modules():
        if isinstance(module, LoraLinear):
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    delta = module.get_delta_weight(adapter).detach()
                    key = f"{name}.weight"
                    deltas[key] = deltas[key] + delta if key in deltas else delta
    merged: dict[str, Any] = {}
    for key, value in state.items():
        if "lora_" in key:
            continue
        clean = key.replace(".base_layer.", ".")
        merged[clean] = (value + deltas[clean]).detach() if clean in deltas else value.detach()
    return merged


def adapter_state(core: Any) -> dict[str, Any] | None:
    """The LoRA weights alone (what resuming a LoRA run needs), or None for full fine-tuning."""
    adapter = {k: v.detach().clone() for k, v in core.state_dict().items() if "lora_" in k}
    return adapter or None


def save_model(core: Any, base: Path, out: Path, lineage: dict[str, Any]) -> None:
    """Write an ordinary model directory: support files of ``base``, merged weights, lineage."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out.mkdir(parents=True, exist_ok=True)
    copy_support_files(base, out)
    module = bare_module(core)
    state = {k: v.contiguous() for k, v in merged_state_dict(core).items()}
    state.update(base_only_tensors(base / transformer_dir(base), state))
    where = out / transformer_dir(base)
    module.save_pretrained(str(where), state_dict=state, safe_serialization=True)
    _keep_base_config(base / transformer_dir(base) / "config.json", where / "config.json", state)
    write_json(out / LINEAGE, lineage)


def _keep_base_config(source: Path, target: Path, state: dict[str, Any]) -> None:
    """The base's config.json verbatim (architectures and all), with the dtype of the saved weights.

    Weights are saved as trained (float32): rounding a fine-tuned delta to bf16 would erase much of it.
    """
    try:
        config = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    dtype = str(next(iter(state.values())).dtype).removeprefix("torch.") if state else "float32"
    for key in ("torch_dtype", "dtype"):
        if key in config:
            config[key] = dtype
    write_json(target, config)


def base_only_tensors(directory: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Tensors the base's files hold that the module no longer reports (old buffers such as BERT's
    ``embeddings.position_ids``), so the output keeps the base's tensor set and merges with it."""
    from safetensors import safe_open

    extra: dict[str, Any] = {}
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), "pt") as fh:
            extra.update({k: fh.get_tensor(k) for k in fh.keys() if k not in state})  # noqa: SIM118
    return extra


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic: a temporary file renamed over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def save_checkpoint(
    out: Path, step: int, core: Any, base: Path, lineage: dict[str, Any], state: dict[str, Any]
) -> Path:
    """``out/checkpoint-{step}``: built under a temporary name, then renamed into place."""
    import torch

    final = out / f"checkpoint-{step}"
    tmp = out / f".checkpoint-{step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(core, base, tmp, lineage)
    torch.save(state, tmp / STATE)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    """The complete checkpoint with the highest step under ``out`` (temporary leftovers are removed)."""
    if not out.is_dir():
        return None
    for leftover in out.glob(".checkpoint-*.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    found = [
        (int(m.group(1)), p)
        for p in out.iterdir()
        if (m := _CHECKPOINT.match(p.name)) and (p / STATE).is_file()
    ]
    return max(found)[1] if found else None


def load_state(checkpoint: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """The saved training state; refuses, in one line naming each differing option, another run's."""
    import torch

    state: dict[str, Any] = torch.load(checkpoint / STATE, map_location="cpu", weights_only=False)
    changed = differences(state.get("run", {}), expected)
    if changed:
        raise Conflict(
            f"cannot resume from {checkpoint}: {'; '.join(changed)}; run with the same data and "
            "options, or train into a new --out"
        )
    return state


def differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``name: X there, Y now`` for every option that differs (nested sections flattened)."""
    found = []
    for key in sorted({*saved, *now}):
        old, new = saved.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += differences(old, new)
        elif old != new:
            name = "the data (its content fingerprint)" if key == "data" else key.replace("_", "-")
            found.append(f"{name}: {_short(old)} there, {_short(new)} now")
    return found


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:16] + "…" + text[-8:]


def check_out_dir(out: Path, *, resume: bool) -> None:
    """A fresh run needs an empty or missing ``--out``; refusing protects earlier results."""
    if resume or not out.exists():
        return
    if not out.is_dir():
        raise InvalidRequest(f"--out {str(out)!r} exists and is not a directory")
    if any(out.iterdir()):
        raise Conflict(
            f"--out {str(out)!r} is not empty; pass --resume to continue its run, or choose a new directory"
        )


def lineage_record(**fields: Any) -> dict[str, Any]:
    from finesift import __version__

    return {
        "finesift_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **fields,
    }
