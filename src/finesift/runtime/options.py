"""How a local engine runs beyond device and dtype: attention kernel, quantization, prefix reuse."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import get_args

from finesift.errors import InvalidRequest
from finesift.runtime.fused import FUSE_MODES
from finesift.settings.base import AttentionName, ForwardName, FuseName, QuantizeName

ATTENTIONS: tuple[str, ...] = get_args(AttentionName)
QUANTIZE: tuple[str, ...] = get_args(QuantizeName)
FORWARDS: tuple[str, ...] = get_args(ForwardName)


@dataclass(frozen=True)
class EngineOptions:
    """Speed options of a local engine; none of them changes a score beyond dtype noise.

    ``attention``: "auto" picks flash-attention 2 with padding-free packing on CUDA when the
    ``flash_attn`` package is installed, SDPA otherwise. ``quantize="int8"``: dynamic int8 linear
    layers on CPU. ``prefix_cache``: rerankers compute the shared prompt prefix of a query once.
    ``forward``: "auto" runs Qwen3 on finesift's packed forward (:mod:`finesift.runtime.qwen3`) on
    CPU and on transformers elsewhere; "packed" and "transformers" force one. ``fuse``: when the packed
    forward compiles its element-wise work into fused kernels (:mod:`finesift.runtime.fused`).
    """

    attention: AttentionName = "auto"
    quantize: QuantizeName = "none"
    prefix_cache: bool = True
    forward: ForwardName = "auto"
    fuse: FuseName = "auto"

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise InvalidRequest(
                f"unknown attention {self.attention!r}; choose one of {', '.join(ATTENTIONS)}"
            )
        if self.quantize not in QUANTIZE:
            raise InvalidRequest(f"unknown quantize {self.quantize!r}; choose one of {', '.join(QUANTIZE)}")
        if self.forward not in FORWARDS:
            raise InvalidRequest(f"unknown forward {self.forward!r}; choose one of {', '.join(FORWARDS)}")
        if self.fuse not in FUSE_MODES:
            raise InvalidRequest(f"unknown fuse {self.fuse!r}; choose one of {', '.join(FUSE_MODES)}")
        if self.forward == "packed" and self.quantize != "none":
            raise InvalidRequest(
                "forward 'packed' runs unquantized weights; use forward 'auto' with quantize"
            )


def flash_attn_installed() -> bool:
    """True when the ``flash_attn`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("flash_attn") is not None


def resolve_attention(attention: str, *, device: str, dtype: str, flash_available: bool | None = None) -> str:
    """The transformers ``attn_implementation`` to load with.

    flash-attention 2 runs on CUDA in fp16/bf16 only; "auto" uses it when installed, SDPA otherwise.
    """
    if attention not in ATTENTIONS:
        raise InvalidRequest(f"unknown attention {attention!r}; choose one of {', '.join(ATTENTIONS)}")
    available = flash_attn_installed() if flash_available is None else flash_available
    fits = device.startswith("cuda") and dtype in ("bfloat16", "float16")
    if attention == "auto":
        return "flash_attention_2" if fits and available else "sdpa"
    if attention == "flash_attention_2" and not (fits and available):
        raise InvalidRequest(
            "attention 'flash_attention_2' needs a CUDA device, dtype bfloat16/float16 and the flash-attn "
            "package (pip install flash-attn); use attention 'auto' or 'sdpa'"
        )
    return attention


def resolve_quantized_dtype(quantize: str, *, device: str, dtype: str) -> str:
    """The dtype to load in: int8 dynamic quantization works on fp32 CPU models only."""
    if quantize == "none":
        return dtype
    if device != "cpu":
        raise InvalidRequest(
            f"quantize 'int8' runs on CPU only, not {device!r}; use device 'cpu' or quantize 'none'"
        )
    if dtype not in ("auto", "float32"):
        raise InvalidRequest(f"quantize 'int8' needs dtype float32 (or auto), not {dtype!r}")
    return "float32"
