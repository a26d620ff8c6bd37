"""finesift merge: slerp identities, the linear fallback, and refusals that name the first difference."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from finesift.errors import Conflict, InvalidRequest, NotFound  # noqa: E402
from finesift.train.merge import lerp, merge_checkpoints, slerp  # noqa: E402


@pytest.fixture
def pair(tiny_embedding_model: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The tiny model (A) and a copy whose float weights are perturbed (B)."""
    a = tmp_path / "a"
    b = tmp_path / "b"
    shutil.copytree(tiny_embedding_model, a)
    shutil.copytree(tiny_embedding_model, b)
    weights = load_file(str(b / "model.safetensors"))
    gen = torch.Generator().manual_seed(0)
    perturbed = {
        k: (v + 0.05 * torch.randn(v.shape, generator=gen)) if "layers.0" in k else v
        for k, v in weights.items()
    }
    save_file(perturbed, str(b / "model.safetensors"), metadata={"format": "pt"})
    return a, b


def _weights(path: Path) -> dict:
    return load_file(str(path / "model.safetensors"))


def _same(x: dict, y: dict) -> bool:
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("method", ["slerp", "linear"])
def test_t0_t1_and_self_merge_are_bit_exact(pair: tuple[Path, Path], tmp_path: Path, method: str) -> None:
    a, b = pair
    merge_checkpoints(a, b, tmp_path / "t0", t=0.0, method=method)
    merge_checkpoints(a, b, tmp_path / "t1", t=1.0, method=method)
    merge_checkpoints(a, a, tmp_path / "aa", t=0.5, method=method)
    assert _same(_weights(tmp_path / "t0"), _weights(a))
    assert _same(_weights(tmp_path / "t1"), _weights(b))
    assert _same(_weights(tmp_path / "aa"), _weights(a))


def test_midpoint_merge_and_its_files(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    result = merge_checkpoints(a, b, tmp_path / "mid", t=0.5)
    merged, wa, wb = _weights(tmp_path / "mid"), _weights(a), _weights(b)
    assert result.slerp > 0 and result.copied > 0 and result.tensors == len(wa)
    for name, value in merged.items():
        if "layers.0" in name and value.dim() == 2:
            want, _ = slerp(wa[name], wb[name], 0.5)
            assert torch.equal(value, want)
            assert not torch.equal(value, wa[name]) and not torch.equal(value, wb[name])
    for name in ("tokenizer.json", "modules.json", "config.json", "1_Pooling/config.json"):
        assert (tmp_path / "mid" / name).read_bytes() == (a / name).read_bytes()
    lineage = json.loads((tmp_path / "mid" / "finesift-lineage.json").read_text())
    assert lineage["method"] == "slerp" and lineage["t"] == 0.5
    assert [i["path"] for i in lineage["inputs"]] == [str(a), str(b)]
    from finesift import load_embedder

    load_embedder(str(tmp_path / "mid"), dtype="float32", device="cpu").embed_documents(["loads"])


def test_slerp_formula_and_linear_fallback() -> None:
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([0.0, 2.0])
    mid, how = slerp(a, b, 0.5)
    theta = math.pi / 2
    want = torch.tensor([math.sin(theta / 2) / math.sin(theta), 2 * math.sin(theta / 2) / math.sin(theta)])
    assert how == "slerp" and torch.allclose(mid, want)
    parallel, how = slerp(a, 3 * a, 0.25)
    assert how == "linear" and torch.allclose(parallel, torch.tensor([1.5, 0.0]))
    zero, how = slerp(torch.zeros(2), b, 0.5)
    assert how == "linear" and torch.allclose(zero, torch.tensor([0.0, 1.0]))
    assert torch.equal(lerp(a, b, 0.0), a) and torch.equal(lerp(a, b, 1.0), b)
    half = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    assert slerp(half, half.flip(0), 0.3)[0].dtype == torch.bfloat16


def _direct_slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The formula written out: sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b, θ the angle between a and b."""
    x, y = a.double().flatten(), b.double().flatten()
    theta = math.acos(float(x @ y) / float(x.norm() * y.norm()))
    out = math.sin((1 - t) * theta) / math.sin(theta) * x + math.sin(t * theta) / math.sin(theta) * y
    return out.reshape(a.shape)


def test_t_weighs_a_by_one_minus_t_on_both_methods() -> None:
    """t = 0.3 is 70 % of A: a swap of t and 1 - t (invisible at t = 0.5) fails here."""
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([0.0, 2.0])
    got, how = slerp(a, b, 0.3)
    assert how == "slerp" and torch.allclose(got.double(), _direct_slerp(a, b, 0.3))
    # between unit vectors, slerp walks the arc at constant speed: 30 % of the way from A (angle 0)
    unit, _ = slerp(a, torch.tensor([0.0, 1.0]), 0.3)
    angle = math.atan2(float(unit[1]), float(unit[0]))
    assert angle == pytest.approx(0.3 * math.pi / 2, rel=1e-6)
    assert torch.allclose(lerp(a, b, 0.3), torch.tensor([0.7, 0.6]))


def test_a_merge_at_t_03_is_the_formula_per_tensor(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    merge_checkpoints(a, b, tmp_path / "m", t=0.3)
    merged, wa, wb = _weights(tmp_path / "m"), _weights(a), _weights(b)
    changed = [name for name in wa if not torch.equal(wa[name], wb[name])]
    assert changed
    for name in changed:
        want = _direct_slerp(wa[name], wb[name], 0.3).to(wa[name].dtype)
        assert torch.allclose(merged[name], want, atol=1e-6), name
        # nearer A than B, in the ratio the angles give (0.3 of θ from A, 0.7 from B)
        assert float((merged[name] - wa[name]).norm()) < float((merged[name] - wb[name]).norm()), name


def test_refuses_different_shapes(tiny_embedding_model: Path, tmp_path: Path) -> None:
    from finesift.testing.models import TINY_SHAPE, build_model, qwen3_config

    other = build_model(
        tmp_path / "wide",
        "embedding",
        config=qwen3_config("embedding", {**TINY_SHAPE, "intermediate_size": 96}),
    )
    with pytest.raises(Conflict, match=r"config.json differs at 'intermediate_size': 128 vs 96"):
        merge_checkpoints(tiny_embedding_model, other, tmp_path / "out")
    # same config, different tensor shape: the tensor is named
    config = json.loads((tiny_embedding_model / "config.json").read_text())
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(Conflict, match=r"tensor 'layers.0.mlp.down_proj.weight' is F32\[64, 128\]"):
        merge_checkpoints(tiny_embedding_model, other, tmp_path / "out")


def test_refuses_other_configs_and_tokenizers_but_ignores_bookkeeping(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = pair
    config = json.loads((b / "config.json").read_text())
    (b / "config.json").write_text(
        json.dumps({**config, "_name_or_path": "/x", "torch_dtype": "float32", "dtype": "x"})
    )
    merge_checkpoints(a, b, tmp_path / "ok")  # bookkeeping fields do not count
    (b / "config.json").write_text(json.dumps({**config, "rope_theta": 10000}))
    with pytest.raises(Conflict, match=r"config.json differs at 'rope_theta'"):
        merge_checkpoints(a, b, tmp_path / "no1")
    (b / "config.json").write_text(json.dumps(config))
    tokenizer = json.loads((b / "tokenizer.json").read_text())
    tokenizer["post_processor"] = None
    (b / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(Conflict, match=r"the tokenizers differ: tokenizer.json"):
        merge_checkpoints(a, b, tmp_path / "no2")
    assert not (tmp_path / "no1").exists() and not (tmp_path / "no2").exists()


def test_refuses_bad_arguments(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    with pytest.raises(InvalidRequest, match=r"--t must lie in \[0, 1\]"):
        merge_checkpoints(a, b, tmp_path / "o", t=1.5)
    with pytest.raises(InvalidRequest, match="--method"):
        merge_checkpoints(a, b, tmp_path / "o", method="ties")
    with pytest.raises(NotFound, match="not a model directory"):
        merge_checkpoints(a, tmp_path, tmp_path / "o")
    with pytest.raises(Conflict, match="not empty"):
        merge_checkpoints(a, b, a)
    (b / "model.safetensors").rename(b / "other.safetensors")
    with pytest.raises(Conflict, match="different weight files"):
        merge_checkpoints(a, b, tmp_path / "o")
