"""Device and dtype choice: pure functions of what the machine offers."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal

from finesift.errors import InvalidRequest

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
DtypeName = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "amx_tile"})


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (empty where /proc/cpuinfo is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16(flags: Iterable[str]) -> bool:
    """True when the CPU computes bf16 matmuls natively (AVX512-BF16 or AMX)."""
    return bool(_BF16_CPU_FLAGS & set(flags))


def resolve_device(device: str, *, cuda_available: bool) -> str:
    """Turn "auto" into "cuda" or "cpu"; validate explicit choices."""
    if device == "auto":
        return "cuda" if cuda_available else "cpu"
    if device == "cpu" or device.startswith(("cuda", "mps")):
        if device.startswith("cuda") and not cuda_available:
            raise InvalidRequest(f"device {device!r} requested but CUDA is not available; use --device cpu")
        return device
    raise InvalidRequest(f"unknown device {device!r}; choose one of auto, cpu, cuda, cuda:N, mps")


def resolve_dtype(dtype: str, *, device: str, flags: Iterable[str] | None = None) -> str:
    """Turn "auto" into bf16 on CUDA and bf16-capable CPUs, fp32 elsewhere."""
    if dtype not in DTYPES:
        raise InvalidRequest(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        return "bfloat16"
    if device == "cpu" and cpu_has_fast_bf16(cpu_flags() if flags is None else flags):
        return "bfloat16"
    return "float32"


def torch_device_and_dtype(device: str, dtype: str) -> tuple[str, Any]:
    """Resolve names against the installed torch; returns (device str, torch.dtype)."""
    import torch

    dev = resolve_device(device, cuda_available=torch.cuda.is_available())
    name = resolve_dtype(dtype, device=dev)
    return dev, getattr(torch, name)
