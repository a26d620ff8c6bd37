"""finesift train recipe: stage 1 -> stage 2 -> merge, skipped by fingerprint on re-run; config refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finesift.errors import Conflict, InvalidRequest, NotFound
from finesift.train.recipe_config import load_recipe

STAGES = """
[defaults]
lr = 1e-3
lora = false
precision = "fp32"
max_length = 48

[stage1]
data = "{data}"
split = "test"
batch_size = 8
max_steps = 1

[stage2]
data = "{data}"
split = "test"
batch_size = 4
hard_negatives = 1
max_steps = 3
save_steps = 1
{extra}
"""


def _write(tmp_path: Path, model: str, data: Path, extra: str = "", head: str = "") -> Path:
    path = tmp_path / "recipe.toml"
    text = f'model = "{model}"\nout = "run"\n{head}' + STAGES.format(data=data, extra=extra)
    path.write_text(text, encoding="utf-8")
    return path


def test_config_defaults_and_paths(tiny_en: Path, tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, "some/model", tiny_en))
    assert recipe.out == tmp_path / "run" and recipe.model == "some/model"
    assert recipe.stage1.options["hard_negatives"] == 0  # stage 1: in-batch negatives only
    assert recipe.stage2.options["hard_negatives"] == 1 and recipe.stage2.options["lr"] == 1e-3
    assert (recipe.last, recipe.method, recipe.weights, recipe.seeds) == (3, "slerp", None, (0,))
    seeded = load_recipe(_write(tmp_path, "m", tiny_en, extra="seeds = [1, 2]"))
    assert seeded.seeds == (1, 2) and seeded.last == 1  # several runs: each run's final model


@pytest.mark.parametrize(
    ("extra", "head", "message"),
    [
        ("bach_size = 4", "", r"\[stage2\]: unknown option 'bach_size'; valid: data, accumulation"),
        ("model = 'x'", "", r"\[stage2\]: 'model' is set by the recipe"),
        ("epochs = 'two'", "", r"\[stage2\]: epochs = 'two' is not a valid int"),
        ("precision = 'fp16'", "", r"precision = 'fp16' is not a valid 'auto' \| 'fp32' \| 'bf16'"),
        ("lora = 1", "", r"lora = 1 is not a valid bool"),
        ("seeds = [1, 1]", "", r"seeds repeats a value"),
        ("epochs = 0", "", r"\[stage2\]: --epochs must be at least 1"),
        ("[merge]\nlast = 0", "", r"\[merge\]: last must be a positive integer"),
        ("[merge]\nmethod = 'ties'", "", r"\[merge\]: method must be slerp or linear"),
        ("[merge]\nkeep = 2", "", r"\[merge\]: unknown option 'keep'"),
        ("", "stage3 = 1\n", r"unknown key or table 'stage3'"),
    ],
)
def test_config_refusals_name_the_table_and_key(
    tiny_en: Path, tmp_path: Path, extra: str, head: str, message: str
) -> None:
    from finesift.train.recipe import run_recipe

    with pytest.raises(InvalidRequest, match=message):
        run_recipe(load_recipe(_write(tmp_path, "m", tiny_en, extra=extra, head=head)))
    assert not (tmp_path / "run").exists()


def test_missing_parts_and_a_merge_the_checkpoints_cannot_supply(tiny_en: Path, tmp_path: Path) -> None:
    from finesift.train.recipe import run_recipe

    with pytest.raises(NotFound, match="does not exist"):
        load_recipe(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text('model = "m"\nout = "o"\n[stage1]\ndata = "x"\n')
    with pytest.raises(InvalidRequest, match="'stage2' is missing"):
        load_recipe(tmp_path / "bad.toml")
    with pytest.raises(NotFound, match=r"\[stage1\]: data .* does not exist"):
        load_recipe(_write(tmp_path, "m", tmp_path / "nowhere"))
    few = _write(tmp_path, "m", tiny_en, extra="[merge]\nlast = 5")
    with pytest.raises(InvalidRequest, match=r"last = 5 needs 4 checkpoints .* saves 2; lower \[stage2\]"):
        run_recipe(load_recipe(few))
    weights = _write(tmp_path, "m", tiny_en, extra="[merge]\nweights = [1, 2]")
    with pytest.raises(InvalidRequest, match=r"2 weights for 3 merged models"):
        run_recipe(load_recipe(weights))


@pytest.mark.slow
def test_recipe_runs_skips_finished_stages_and_refuses_changed_ones(
    tiny_embedding_model: Path, tiny_en: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from finesift.cli.app import app
    from finesift.train import embedding
    from finesift.train.merge import merge_models

    path = _write(tmp_path, str(tiny_embedding_model), tiny_en)
    runner = CliRunner()
    first = runner.invoke(app, ["train", "recipe", "--config", str(path), "--no-progress", "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    run = tmp_path / "run"
    assert [s["skipped"] for s in summary["stages"].values()] == [False, False]
    lineage = json.loads((run / "model" / "finesift-lineage.json").read_text())
    assert lineage["kind"] == "recipe" and [s["name"] for s in lineage["stages"]] == ["stage1", "stage2"]
    assert lineage["stages"][1]["lineage"]["base_model"] == str(run / "stage1")
    assert lineage["stages"][0]["lineage"]["loss"]["hard_negatives"] == 0
    inputs = [run / "stage2" / "checkpoint-1", run / "stage2" / "checkpoint-2", run / "stage2"]
    assert lineage["merge"]["inputs"] == [str(p) for p in inputs]
    merge_models(inputs, tmp_path / "again")  # the final model is the merge of those three
    from safetensors.torch import load_file

    got, want = (
        load_file(str(run / "model" / "model.safetensors")),
        load_file(str(tmp_path / "again" / "model.safetensors")),
    )
    assert all((got[k] == want[k]).all() for k in want)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished stage was trained again")

    monkeypatch.setattr(embedding, "train_embedding", no_training)
    again = runner.invoke(app, ["train", "recipe", "--config", str(path), "--json"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert [s["skipped"] for s in summary["stages"].values()] == [True, True] and summary["merge"]["skipped"]
    path.write_text(path.read_text().replace("max_steps = 3", "max_steps = 3\nlr = 5e-4"))
    with pytest.raises(Conflict, match=r"stage2 in .* was trained with other data, options"):
        from finesift.train.recipe import run_recipe

        run_recipe(load_recipe(path))
