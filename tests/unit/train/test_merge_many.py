"""finesift merge over N checkpoints: successive slerp, checked against the formula written out here."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from finesift.errors import Conflict, InvalidRequest  # noqa: E402
from finesift.train.merge import merge_checkpoints, merge_models  # noqa: E402


@pytest.fixture
def five(tiny_embedding_model: Path, tmp_path: Path) -> list[Path]:
    """The tiny model and four copies whose layer-0 weights are perturbed differently."""
    models = []
    for i in range(5):
        path = tmp_path / f"m{i}"
        shutil.copytree(tiny_embedding_model, path)
        if i:
            weights = load_file(str(path / "model.safetensors"))
            gen = torch.Generator().manual_seed(i)
            weights = {
                k: (v + 0.2 * torch.randn(v.shape, generator=gen)) if "layers.0" in k else v
                for k, v in weights.items()
            }
            save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
        models.append(path)
    return models


def _weights(path: Path) -> dict:
    return load_file(str(path / "model.safetensors"))


def _slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b in float64 (the inputs here are never parallel)."""
    x, y = a.double().flatten(), b.double().flatten()
    theta = math.acos(float(x @ y) / float(x.norm() * y.norm()))
    out = math.sin((1 - t) * theta) / math.sin(theta) * x + math.sin(t * theta) / math.sin(theta) * y
    return out.reshape(a.shape).to(a.dtype)


def _chain(tensors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """R_1 = M_1, R_k = slerp(R_{k-1}, M_k, w_k / (w_1 + … + w_k))."""
    result, seen = tensors[0], weights[0]
    for tensor, w in zip(tensors[1:], weights[1:], strict=True):
        seen += w
        result = _slerp(result, tensor, w / seen)
    return result


def test_five_checkpoints_follow_the_chain_formula_with_weights_in_order(
    five: list[Path], tmp_path: Path
) -> None:
    weights = [1.0, 2.0, 0.5, 3.0, 1.5]
    result = merge_models(five, tmp_path / "w", weights=weights)
    merge_models(five, tmp_path / "eq")
    inputs = [_weights(p) for p in five]
    got, equal = _weights(tmp_path / "w"), _weights(tmp_path / "eq")
    changed = [k for k in inputs[0] if "layers.0" in k and inputs[0][k].dim() == 2]
    assert changed and result.slerp == len([k for k in inputs[0] if "layers.0" in k])
    for name in changed:
        column = [w[name] for w in inputs]
        assert torch.allclose(got[name], _chain(column, weights), atol=1e-6), name
        assert torch.allclose(equal[name], _chain(column, [1.0] * 5), atol=1e-6), name
        # the weights matter: the weighted merge is not the equal one
        assert not torch.allclose(got[name], equal[name], atol=1e-4)
    assert result.weights == pytest.approx([w / 8 for w in weights]) and result.t is None
    lineage = json.loads((tmp_path / "w" / "finesift-lineage.json").read_text())
    assert [i["path"] for i in lineage["inputs"]] == [str(p) for p in five]
    assert lineage["weights"] == pytest.approx(result.weights)


def test_two_checkpoints_equal_the_two_model_slerp_both_ways(five: list[Path], tmp_path: Path) -> None:
    a, b = five[0], five[1]
    merge_checkpoints(a, b, tmp_path / "t", t=0.3)
    merge_models([a, b], tmp_path / "w", weights=[0.7, 0.3])
    merge_models([a, b], tmp_path / "w2", weights=[7, 3])
    old, new, scaled = _weights(tmp_path / "t"), _weights(tmp_path / "w"), _weights(tmp_path / "w2")
    wa, wb = _weights(a), _weights(b)
    for name in old:
        assert torch.equal(old[name], new[name]) and torch.equal(old[name], scaled[name]), name
    name = "layers.0.mlp.down_proj.weight"
    # t = 0.3 is 70 % of A: nearer A, and the formula with A at t = 0
    assert torch.allclose(new[name], _slerp(wa[name], wb[name], 0.3), atol=1e-6)
    assert float((new[name] - wa[name]).norm()) < float((new[name] - wb[name]).norm())
    merge_models([b, a], tmp_path / "ba", weights=[0.3, 0.7])  # the same merge, inputs swapped
    assert torch.allclose(_weights(tmp_path / "ba")[name], new[name], atol=1e-6)


def test_identical_inputs_are_exact_and_zero_weights_drop_a_model(five: list[Path], tmp_path: Path) -> None:
    result = merge_models([five[2]] * 4, tmp_path / "same", weights=[1, 3, 2, 5])
    same, original = _weights(tmp_path / "same"), _weights(five[2])
    assert all(torch.equal(same[k], original[k]) for k in original) and result.copied == result.tensors
    merge_models(five[:3], tmp_path / "only2", weights=[0, 0, 1])
    only = _weights(tmp_path / "only2")
    assert all(torch.equal(only[k], _weights(five[2])[k]) for k in only)


def test_refusals(five: list[Path], tiny_reranker_model: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="at least two checkpoints, got 1"):
        merge_models(five[:1], tmp_path / "o")
    with pytest.raises(InvalidRequest, match="gives 2 weights for 3 checkpoints"):
        merge_models(five[:3], tmp_path / "o", weights=[1, 1])
    with pytest.raises(InvalidRequest, match="non-negative with a positive sum"):
        merge_models(five[:3], tmp_path / "o", weights=[1, -1, 1])
    with pytest.raises(InvalidRequest, match="non-negative with a positive sum"):
        merge_models(five[:2], tmp_path / "o", weights=[0, 0])
    tokenizer = json.loads((five[3] / "tokenizer.json").read_text())
    tokenizer["post_processor"] = None
    (five[3] / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(Conflict, match=r"the tokenizers differ: tokenizer\.json"):
        merge_models(five, tmp_path / "o")
    with pytest.raises(Conflict, match="is missing"):  # another architecture, in third place
        merge_models([five[0], five[1], tiny_reranker_model], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_cli_merges_five_and_refuses_t_with_more_than_two(five: list[Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from finesift.cli.app import app

    runner = CliRunner()
    args = ["merge", *map(str, five), "--out", str(tmp_path / "cli"), "--weights", "1,1,1,1,2", "--json"]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["weights"] == pytest.approx([1 / 6] * 4 + [1 / 3])
    bad = runner.invoke(app, ["merge", *map(str, five[:3]), "--out", str(tmp_path / "x"), "--t", "0.3"])
    assert bad.exit_code == 2 and "pass --weights" in bad.output
    one = runner.invoke(app, ["merge", str(five[0]), "--out", str(tmp_path / "x")])
    assert one.exit_code == 2 and "at least two checkpoints" in one.output
