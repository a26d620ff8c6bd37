"""Runtime helpers of the fast path: padding, packing, prefix split, attention and quantize choice."""

from __future__ import annotations

import pytest

from finesift.errors import InvalidRequest
from finesift.runtime.batching import left_pad, pack, plan_batches, right_pad, split_on_prefix
from finesift.runtime.options import EngineOptions, resolve_attention, resolve_quantized_dtype


def test_left_and_right_padding() -> None:
    assert left_pad([[1, 2, 3], [4]], 0) == ([[1, 2, 3], [0, 0, 4]], [[1, 1, 1], [0, 0, 1]])
    assert right_pad([[1, 2, 3], [4]], 0) == ([[1, 2, 3], [4, 0, 0]], [[1, 1, 1], [1, 0, 0]])


def test_pack_restarts_positions_and_marks_last_tokens() -> None:
    assert pack([[5, 6, 7], [8], [9, 10]]) == ([5, 6, 7, 8, 9, 10], [0, 1, 2, 0, 0, 1], [2, 3, 5])


def test_split_on_prefix_needs_the_whole_prefix_and_a_tail() -> None:
    rows = [[1, 2, 3], [1, 2], [1, 9, 3], [1, 2, 4, 5], [7]]
    assert split_on_prefix(rows, [1, 2]) == ([0, 3], [1, 2, 4])


def test_budget_bounds_padded_tokens_per_batch() -> None:
    lengths = [500, 20, 8000, 300, 40, 9000, 60]
    batches = plan_batches(lengths, token_budget=1024)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 1024


@pytest.mark.parametrize(
    ("attention", "device", "dtype", "flash", "expected"),
    [
        ("auto", "cpu", "bfloat16", True, "sdpa"),
        ("auto", "cuda", "bfloat16", True, "flash_attention_2"),
        ("auto", "cuda", "bfloat16", False, "sdpa"),
        ("auto", "cuda", "float32", True, "sdpa"),
        ("sdpa", "cuda", "bfloat16", True, "sdpa"),
        ("flash_attention_2", "cuda:1", "float16", True, "flash_attention_2"),
    ],
)
def test_resolve_attention(attention: str, device: str, dtype: str, flash: bool, expected: str) -> None:
    assert resolve_attention(attention, device=device, dtype=dtype, flash_available=flash) == expected


def test_flash_attention_where_it_cannot_run_names_the_fix() -> None:
    with pytest.raises(InvalidRequest, match="pip install flash-attn"):
        resolve_attention("flash_attention_2", device="cuda", dtype="bfloat16", flash_available=False)
    with pytest.raises(InvalidRequest, match="choose one of"):
        resolve_attention("xformers", device="cpu", dtype="float32", flash_available=False)


def test_int8_runs_in_fp32_on_cpu_only() -> None:
    assert resolve_quantized_dtype("none", device="cuda", dtype="bfloat16") == "bfloat16"
    assert resolve_quantized_dtype("int8", device="cpu", dtype="auto") == "float32"
    with pytest.raises(InvalidRequest, match="CPU only"):
        resolve_quantized_dtype("int8", device="cuda", dtype="auto")
    with pytest.raises(InvalidRequest, match="float32"):
        resolve_quantized_dtype("int8", device="cpu", dtype="bfloat16")


def test_options_validate_names() -> None:
    with pytest.raises(InvalidRequest, match="quantize"):
        EngineOptions(quantize="int4")  # type: ignore[arg-type]
