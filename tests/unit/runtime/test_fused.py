"""The packed forward's fused CPU kernels: when they compile, what they compute, and how they fail."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from finesift.errors import InvalidRequest
from finesift.runtime import fused
from finesift.runtime.options import EngineOptions

torch = pytest.importorskip("torch")


def _decoder(path: Path, dtype: object) -> object:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).base_model.eval()


def _rows(lengths: list[int], seed: int = 0) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 5000, (n,), generator=gen).tolist() for n in lengths]


@pytest.fixture(scope="module")
def decoder(tiny_reranker_model: Path) -> object:
    return _decoder(tiny_reranker_model, torch.bfloat16)


class _SpyCompile:
    """Stands in for ``Kernels._compile``: counts calls and installs the eager kernels as "compiled"."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, kernels: fused.Kernels) -> None:
        self.calls += 1
        kernels._compiled = {
            "norm": fused.rms_norm,
            "qk": fused.qk_norm_rope,
            "swiglu": fused.silu_mul,
        }


def _spy(monkeypatch: pytest.MonkeyPatch, *, compiler: bool, min_tokens: int) -> _SpyCompile:
    """A spy in place of the compile, a compiler found or not, and ``auto``'s threshold lowered."""
    spy = _SpyCompile()
    monkeypatch.setattr(fused.Kernels, "_compile", lambda k: spy(k))
    monkeypatch.setattr(fused, "compiler_found", lambda: compiler)
    monkeypatch.setattr(fused, "AUTO_MIN_TOKENS", min_tokens)
    return spy


def test_unknown_fuse_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidRequest, match="auto, on, off"):
        EngineOptions(fuse="always")  # type: ignore[arg-type]


def test_auto_compiles_once_at_the_first_large_forward(
    decoder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finesift.runtime.qwen3 import PackedQwen3

    spy = _spy(monkeypatch, compiler=True, min_tokens=64)
    packed = PackedQwen3(decoder)
    packed.last_hidden(_rows([10, 20]))
    assert spy.calls == 0 and not packed.kernels.compiled  # a small job never waits for a compile
    packed.last_hidden(_rows([40, 30]))
    packed.last_hidden(_rows([50, 50]))
    assert spy.calls == 1 and packed.kernels.compiled


def test_warm_up_compiles_now_what_auto_would_compile_later(
    decoder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finesift.runtime.qwen3 import PackedQwen3

    spy = _spy(monkeypatch, compiler=True, min_tokens=10**9)
    packed = PackedQwen3(decoder)
    packed.warm_up()
    packed.warm_up()
    assert spy.calls == 1 and packed.kernels.compiled
    PackedQwen3(decoder, fuse="off").warm_up()
    assert spy.calls == 1


def test_engines_warm_up_through_their_wrappers(
    tiny_embedding_model: Path, tiny_reranker_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Embedder.warm_up`` / ``Reranker.warm_up`` (what ``serve`` calls at start) reach the packed
    forward; a backend without one (the fakes) is left alone."""
    from finesift import load_embedder, load_reranker

    spy = _spy(monkeypatch, compiler=True, min_tokens=10**9)
    load_embedder(str(tiny_embedding_model), device="cpu").warm_up()
    load_reranker(str(tiny_reranker_model), device="cpu").warm_up()
    assert spy.calls == 2
    load_embedder("fake").warm_up()
    load_reranker("fake").warm_up()
    assert spy.calls == 2


def test_auto_without_a_compiler_stays_eager(decoder: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from finesift.runtime.qwen3 import PackedQwen3

    spy = _spy(monkeypatch, compiler=False, min_tokens=8)
    lookups = []
    monkeypatch.setattr(fused, "compiler_found", lambda: lookups.append(1) or False)
    packed = PackedQwen3(decoder)
    packed.last_hidden(_rows([40, 30]))
    packed.last_hidden(_rows([40, 30]))
    assert spy.calls == 0 and not packed.kernels.compiled
    assert len(lookups) == 1  # PATH is searched once per engine, not on every large forward


def test_off_never_compiles(decoder: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from finesift.runtime.qwen3 import PackedQwen3

    spy = _spy(monkeypatch, compiler=True, min_tokens=8)
    PackedQwen3(decoder, fuse="off").last_hidden(_rows([40, 30]))
    assert spy.calls == 0


def test_on_without_a_compiler_names_the_fix(decoder: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from finesift.runtime.qwen3 import PackedQwen3

    monkeypatch.setattr(fused, "compiler_found", lambda: False)
    with pytest.raises(InvalidRequest, match=r"C\+\+ compiler.*fuse 'auto' or 'off'"):
        PackedQwen3(decoder, fuse="on")


def test_off_the_cpu_nothing_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """inductor's CPU kernels are for CPU tensors; other devices keep their own kernels."""
    monkeypatch.setattr(fused, "compiler_found", lambda: False)  # "on" would raise if it applied
    kernels = fused.Kernels("on", device=torch.device("meta"), shapes={}, dtype=torch.bfloat16)
    assert kernels.mode == "off" and not kernels.compiled


def test_a_failed_compile_leaves_the_eager_kernels_and_says_so(
    decoder: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from finesift.runtime.qwen3 import PackedQwen3

    def broken(kernels: fused.Kernels) -> None:
        raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")

    rows = _rows([40, 30, 7])
    want = PackedQwen3(decoder, fuse="off").last_hidden(rows)
    monkeypatch.setattr(fused.Kernels, "_compile", broken)
    monkeypatch.setattr(fused, "compiler_found", lambda: True)
    monkeypatch.setattr(fused, "AUTO_MIN_TOKENS", 8)
    packed = PackedQwen3(decoder)
    with caplog.at_level(logging.WARNING, logger="finesift.runtime.fused"):
        got = packed.last_hidden(rows)
        packed.last_hidden(rows)
    assert torch.equal(got, want) and not packed.kernels.compiled
    assert [r.message for r in caplog.records].count(
        "fused CPU kernels could not be compiled; running eager kernels: "
        "InvalidCxxCompiler: no working C++ compiler found"
    ) == 1


# -- the compiled kernels themselves (needs a C++ compiler: CI has one, it builds llama.cpp) ---------


@pytest.fixture(scope="module")
def compiled(decoder: object) -> object:
    from finesift.runtime.qwen3 import PackedQwen3

    if not fused.compiler_found():
        pytest.fail("no C++ compiler on PATH: the fused-kernel tests need g++ or clang++ (or $CXX)")
    return PackedQwen3(decoder, fuse="on")


@pytest.mark.slow
def test_compiled_kernels_equal_the_eager_formulas(compiled: object) -> None:
    kernels = compiled.kernels  # type: ignore[attr-defined]
    layer = compiled.layers[0]  # type: ignore[attr-defined]
    gen = torch.Generator().manual_seed(0)
    for rows in (16, 45, 301):  # none is the probe's row count: one compiled kernel serves them all
        x = torch.randn(rows, 64, generator=gen)
        assert _close(
            kernels.norm(x, layer.ln1, 1e-6, torch.bfloat16),
            fused.rms_norm(x, layer.ln1, 1e-6, torch.bfloat16),
        )
        qkv = torch.randn(rows, 8 * 16, generator=gen).bfloat16()
        qk = qkv[:, : 6 * 16].view(rows, 6, 16)
        cos, sin = torch.randn(rows, 1, 16, generator=gen), torch.randn(rows, 1, 16, generator=gen)
        want = fused.qk_norm_rope(qk, layer.qk_norm, cos, sin, 1e-6, torch.bfloat16)
        assert _close(kernels.qk(qk, layer.qk_norm, cos, sin, 1e-6), want)
        gate_up = torch.randn(rows, 256, generator=gen).bfloat16()
        assert _close(kernels.swiglu(gate_up), fused.silu_mul(gate_up.clone()))


def _close(got: object, want: object) -> bool:
    """Equal up to one bf16 rounding of the output (eager rounds SwiGLU's silu once more)."""
    assert got.dtype == want.dtype and got.shape == want.shape  # type: ignore[attr-defined]
    diff = (got.float() - want.float()).abs()  # type: ignore[attr-defined]
    return bool((diff <= 2**-7 * want.float().abs() + 1e-3).all())  # type: ignore[attr-defined]


@pytest.mark.slow
def test_fused_forward_keeps_the_eager_forwards_outputs(decoder: object, compiled: object) -> None:
    from finesift.runtime.qwen3 import PackedQwen3

    eager = PackedQwen3(decoder, fuse="off")
    rows = _rows([40, 17, 1, 90, 33])
    cos = torch.nn.functional.cosine_similarity(compiled.last_hidden(rows), eager.last_hidden(rows))  # type: ignore[attr-defined]
    assert cos.min().item() >= 0.9995
    prefix, tails = _rows([23], seed=1)[0], _rows([30, 18, 2], seed=2)
    got = compiled.last_hidden_after(compiled.prefix(prefix), tails)  # type: ignore[attr-defined]
    want = eager.last_hidden_after(eager.prefix(prefix), tails)
    assert torch.nn.functional.cosine_similarity(got, want).min().item() >= 0.9995
