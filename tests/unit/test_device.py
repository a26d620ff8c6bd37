"""dtype and device choice are pure functions of what the machine offers."""

from __future__ import annotations

import pytest

from finesift.errors import InvalidRequest
from finesift.runtime.device import cpu_has_fast_bf16, resolve_device, resolve_dtype


@pytest.mark.parametrize(
    ("device", "flags", "expected"),
    [
        ("cuda", [], "bfloat16"),
        ("cuda:1", [], "bfloat16"),
        ("cpu", ["avx2", "avx512_bf16"], "bfloat16"),
        ("cpu", ["amx_bf16"], "bfloat16"),
        ("cpu", ["avx2", "avx512f"], "float32"),
        ("cpu", [], "float32"),
        ("mps", [], "float32"),
    ],
)
def test_auto_dtype(device: str, flags: list[str], expected: str) -> None:
    assert resolve_dtype("auto", device=device, flags=flags) == expected


def test_explicit_dtype_wins() -> None:
    assert resolve_dtype("float16", device="cpu", flags=[]) == "float16"
    with pytest.raises(InvalidRequest, match="bfloat16"):
        resolve_dtype("fp8", device="cpu", flags=[])


def test_device_resolution() -> None:
    assert resolve_device("auto", cuda_available=False) == "cpu"
    assert resolve_device("auto", cuda_available=True) == "cuda"
    assert resolve_device("cuda:0", cuda_available=True) == "cuda:0"
    with pytest.raises(InvalidRequest, match="CUDA is not available"):
        resolve_device("cuda", cuda_available=False)
    with pytest.raises(InvalidRequest, match="unknown device"):
        resolve_device("tpu", cuda_available=True)


def test_bf16_flag_detection() -> None:
    assert cpu_has_fast_bf16({"avx512_bf16"}) and not cpu_has_fast_bf16({"avx512f"})
