"""finesift's packed Qwen3 forward equals transformers' (fp32), shares its weights, and is chosen on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from finesift.errors import InvalidRequest
from finesift.runtime import forward, hf
from finesift.runtime.batching import plan_batches
from finesift.runtime.options import EngineOptions

torch = pytest.importorskip("torch")

LENGTHS = [5, 17, 1, 40, 2, 9]


def _rows(lengths: list[int], seed: int = 0) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 5000, (n,), generator=gen).tolist() for n in lengths]


@pytest.fixture(scope="module")
def models(tiny_reranker_model: Path) -> tuple[object, object]:
    """(transformers decoder, decoder whose weights the packed forward fused), both fp32."""
    from transformers import AutoModelForCausalLM

    def load() -> object:
        lm = AutoModelForCausalLM.from_pretrained(str(tiny_reranker_model), dtype=torch.float32)
        return lm.base_model.eval()

    return load(), load()


@pytest.fixture(scope="module")
def packed(models: tuple[object, object]) -> object:
    from finesift.runtime.qwen3 import PackedQwen3

    return PackedQwen3(models[1])


def test_last_hidden_equals_transformers(models: tuple[object, object], packed: object) -> None:
    rows = _rows(LENGTHS)
    want = forward.last_hidden_padded(models[0], rows, pad_id=0, device="cpu")
    got = packed.last_hidden(rows)  # type: ignore[attr-defined]
    assert got.shape == want.shape and got.dtype == torch.float32
    assert (got - want).abs().max().item() <= 1e-5


def test_prefix_then_tails_equals_whole_rows(models: tuple[object, object], packed: object) -> None:
    prefix, tails = _rows([23], seed=1)[0], _rows(LENGTHS, seed=2)
    whole = [prefix + t for t in tails]
    want = forward.last_hidden_padded(models[0], whole, pad_id=0, device="cpu")
    cache = packed.prefix(prefix)  # type: ignore[attr-defined]
    assert cache.length == len(prefix) and len(cache.layers) == len(packed.layers)  # type: ignore[attr-defined]
    got = packed.last_hidden_after(cache, tails)  # type: ignore[attr-defined]
    assert (got - want).abs().max().item() <= 1e-5
    assert (got - packed.last_hidden(whole)).abs().max().item() <= 1e-5  # type: ignore[attr-defined]


def test_a_row_alone_equals_the_row_in_a_batch(packed: object) -> None:
    rows = _rows(LENGTHS, seed=3)
    together = packed.last_hidden(rows)  # type: ignore[attr-defined]
    for i, row in enumerate(rows):
        alone = packed.last_hidden([row])  # type: ignore[attr-defined]
        assert (alone[0] - together[i]).abs().max().item() <= 1e-5


def test_transformers_module_still_runs_on_the_fused_weights(
    models: tuple[object, object], packed: object
) -> None:
    """The projections are views of the fused weights, so doctor replays through transformers work."""
    rows = _rows([7, 3], seed=4)
    ref, fused = models
    want = forward.last_hidden_padded(ref, rows, pad_id=0, device="cpu")
    got = forward.last_hidden_padded(fused, rows, pad_id=0, device="cpu")
    # Fused and separate projections may block their fp32 sums differently: the file's parity bound.
    assert (got - want).abs().max().item() <= 1e-5 * max(1.0, want.abs().max().item())
    layer = fused.layers[0]  # type: ignore[attr-defined]
    assert layer.self_attn.q_proj.weight.untyped_storage().data_ptr() == (
        packed.layers[0].qkv.untyped_storage().data_ptr()  # type: ignore[attr-defined]
    )


def test_slices_of_a_long_row_equal_the_whole(
    tiny_reranker_model: Path, models: tuple[object, object]
) -> None:
    """Token-wise stages run in slices of ``chunk_tokens``: memory per slice, same numbers."""
    from transformers import AutoModelForCausalLM

    from finesift.runtime.qwen3 import PackedQwen3

    lm = AutoModelForCausalLM.from_pretrained(str(tiny_reranker_model), dtype=torch.float32)
    sliced = PackedQwen3(lm.base_model.eval(), chunk_tokens=7)
    rows = _rows(LENGTHS, seed=6)
    want = forward.last_hidden_padded(models[0], rows, pad_id=0, device="cpu")
    assert (sliced.last_hidden(rows) - want).abs().max().item() <= 1e-5
    prefix = _rows([23], seed=7)[0]
    whole = forward.last_hidden_padded(models[0], [prefix + r for r in rows], pad_id=0, device="cpu")
    got = sliced.last_hidden_after(sliced.prefix(prefix), rows)
    assert (got - whole).abs().max().item() <= 1e-5


def test_empty_rows_are_refused(packed: object) -> None:
    with pytest.raises(ValueError, match="at least one token"):
        packed.last_hidden([[1, 2], []])  # type: ignore[attr-defined]


def test_bf16_stays_close_to_fp32(tiny_reranker_model: Path, models: tuple[object, object]) -> None:
    from transformers import AutoModelForCausalLM

    from finesift.runtime.qwen3 import PackedQwen3

    lm = AutoModelForCausalLM.from_pretrained(str(tiny_reranker_model), dtype=torch.bfloat16)
    bf16 = PackedQwen3(lm.base_model.eval())
    rows = _rows(LENGTHS, seed=5)
    want = forward.last_hidden_padded(models[0], rows, pad_id=0, device="cpu")
    got = bf16.last_hidden(rows)
    assert torch.nn.functional.cosine_similarity(got, want, dim=-1).min().item() >= 0.999


def test_packed_forward_is_the_cpu_default_and_respects_options(models: tuple[object, object]) -> None:
    decoder = models[0]
    assert hf.packed_forward(decoder, EngineOptions(forward="transformers"), "cpu") is None
    assert hf.packed_forward(decoder, EngineOptions(), "cuda") is None
    assert hf.packed_forward(decoder, EngineOptions(quantize="int8"), "cpu") is None


def test_packed_refuses_what_it_cannot_run() -> None:
    with pytest.raises(InvalidRequest, match="unquantized"):
        EngineOptions(forward="packed", quantize="int8")
    with pytest.raises(InvalidRequest, match="unknown forward"):
        EngineOptions(forward="fast")  # type: ignore[arg-type]


def test_non_qwen3_models_fall_back_or_are_refused_by_name(models: tuple[object, object]) -> None:
    from finesift.runtime.qwen3 import unsupported_reason

    decoder = models[0]
    decoder.config.use_sliding_window = True  # type: ignore[attr-defined]
    try:
        assert "sliding-window" in (unsupported_reason(decoder) or "")
        assert hf.packed_forward(decoder, EngineOptions(), "cpu") is None
        with pytest.raises(InvalidRequest, match="cannot run this model"):
            hf.packed_forward(decoder, EngineOptions(forward="packed"), "cpu")
    finally:
        decoder.config.use_sliding_window = False  # type: ignore[attr-defined]


def test_packed_batches_count_real_tokens() -> None:
    lengths = [500, 20, 8000, 300, 40, 9000, 60]
    batches = plan_batches(lengths, token_budget=1024, packed=True)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or sum(lengths[i] for i in batch) <= 1024
    assert [500, 300, 60, 40, 20] in [[lengths[i] for i in b] for b in batches]


def test_backends_use_the_packed_forward_on_cpu(tiny_embedder: object, tiny_reranker: object) -> None:
    assert tiny_embedder.backend.packed is not None  # type: ignore[attr-defined]
    assert tiny_reranker.backend.packed is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("into", ["bfloat16", "float32"])
def test_fast_rms_norm_equals_torchs_and_writes_the_asked_dtype(into: str) -> None:
    """The packed forward's RMSNorm (one reduction, two multiplies, cast fused into the last) is torch's."""
    from torch.nn import functional as F

    from finesift.runtime.fused import rms_norm as _rms_norm

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(37, 6, 64, generator=gen) * 3
    weight = torch.randn(6, 64, generator=gen)
    want = F.rms_norm(x, (64,), None, 1e-6) * weight
    for source in (x, x.bfloat16()):
        got = _rms_norm(source, weight, 1e-6, getattr(torch, into))
        assert got.dtype == getattr(torch, into)
        expect = (
            want if source.dtype == torch.float32 else F.rms_norm(source.float(), (64,), None, 1e-6) * weight
        )
        tol = 1e-5 if into == "float32" else 2e-2
        assert (got.float() - expect).abs().max().item() <= tol * expect.abs().max().item()
