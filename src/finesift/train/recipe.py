"""``finesift train recipe``: the Qwen3 Embedding report's three stages as one resumable command.

1. **stage 1** trains ``model`` on weak pairs (a large batch, in-batch negatives only) into
   ``out/stage1``;
2. **stage 2** trains stage 1's model on supervised pairs with mined hard negatives into ``out/stage2``
   (``out/stage2-seed-S`` per seed when ``seeds`` lists several), saving checkpoints;
3. **merge**: the last ``last`` saved models of every stage-2 run (its final model and the ``last - 1``
   latest ``checkpoint-N`` before it, oldest first; runs in seed order) are merged by successive
   slerp (:func:`finesift.train.merge.merge_models`) into ``out/model``.

Every stage calls the ordinary trainer in this process. ``out/finesift-recipe.json`` records each
finished stage with its fingerprint: a sha256 over the input model's identity (the base model's name,
or the previous stage's fingerprint), the data's content fingerprint and the options. A re-run skips
a finished stage whose fingerprint matches, refuses one whose inputs or options changed (naming it),
and resumes a stage that was interrupted from its latest ``checkpoint-N`` (a stage directory without
one starts over). ``out/model/finesift-lineage.json`` carries every stage: inputs, options, outputs,
each trainer's own lineage, and the merge.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from finesift.errors import Conflict, InvalidRequest
from finesift.settings import HubSettings
from finesift.train.checkpoint import LINEAGE, latest_checkpoint, lineage_record, write_json
from finesift.train.config import EmbeddingTrainConfig, batch_schedule
from finesift.train.data import TrainData, load_pairs
from finesift.train.recipe_config import Recipe, StageSpec, load_recipe

__all__ = ["RecipeResult", "load_recipe", "run_recipe"]
STATE = "finesift-recipe.json"


@dataclass
class RecipeResult:
    """The ``--json`` summary: the final model, each stage (skipped or its TrainResult) and the merge."""

    out: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    merge: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_recipe(recipe: Recipe, *, hub: HubSettings | None = None, progress: bool = True) -> RecipeResult:
    """Run (or continue) ``recipe``: both stages, then the merge; see the module docstring."""
    return _Runner(recipe, hub or HubSettings(), progress).run()


class _Runner:
    def __init__(self, recipe: Recipe, hub: HubSettings, progress: bool) -> None:
        self.recipe, self.hub, self.progress = recipe, hub, progress
        self.state_file = recipe.out / STATE
        self.state: dict[str, Any] = (
            json.loads(self.state_file.read_text(encoding="utf-8")) if self.state_file.is_file() else {}
        )
        self.state.setdefault("stages", {})
        self.result = RecipeResult(out=str(recipe.out / "model"))

    def run(self) -> RecipeResult:
        r = self.recipe
        weak = _load(r.stage1)
        supervised = _load(r.stage2)
        runs = [(f"stage2-seed-{s}" if len(r.seeds) > 1 else "stage2", s) for s in r.seeds]
        probe = r.config(r.stage2, model=r.model, out=r.out / runs[0][0], progress=False)
        _check_merge(r, probe, len(supervised.pairs), len(runs))
        r.out.mkdir(parents=True, exist_ok=True)
        config1 = r.config(r.stage1, model=r.model, out=r.out / "stage1", progress=self.progress)
        first = self._stage("stage1", weak, config1, _digest({"base_model": r.model}))
        merged: list[Path] = []
        for name, seed in runs:
            spec = replace(r.stage2, options={**r.stage2.options, "seed": seed})
            config = r.config(spec, model=str(r.out / "stage1"), out=r.out / name, progress=self.progress)
            self._stage(name, supervised, config, first)
            merged += _saved_models(r.out / name, r.last)
        self._merge(merged)
        return self.result

    def _stage(self, name: str, data: TrainData, config: EmbeddingTrainConfig, upstream: str) -> str:
        """Train one stage unless it finished with the same fingerprint; returns that fingerprint."""
        from finesift.train.embedding import train_embedding

        options = {k: v for k, v in asdict(config).items() if k not in ("out", "progress", "model")}
        fp = _digest({"upstream": upstream, "data": data.fingerprint, "options": options})
        done = self.state["stages"].get(name)
        if done is not None and done["fingerprint"] == fp and (config.out / LINEAGE).is_file():
            self.result.stages[name] = {"skipped": True, **done["result"]}
            return fp
        if done is not None and done["fingerprint"] != fp:
            raise Conflict(
                f"{name} in {self.recipe.out} was trained with other data, options or an other "
                f"upstream stage; train into a new out, or delete {config.out} and rerun"
            )
        resume = latest_checkpoint(config.out) is not None
        if config.out.exists() and not resume:
            shutil.rmtree(config.out)  # an interrupted stage with no checkpoint starts over
        result = train_embedding(data, replace(config, resume=resume), hub=self.hub).to_json()
        record = {
            "fingerprint": fp, "out": str(config.out), "data": data.source, "split": data.split,
            "data_fingerprint": data.fingerprint, "model": config.model, "options": _plain(options),
            "result": result,
        }  # fmt: skip
        self.state["stages"][name] = record
        write_json(self.state_file, self.state)
        self.result.stages[name] = {"skipped": False, **result}
        return fp

    def _merge(self, inputs: list[Path]) -> None:
        from finesift.train.merge import merge_models

        r = self.recipe
        target = r.out / "model"
        fp = _digest({
            "stages": {k: v["fingerprint"] for k, v in sorted(self.state["stages"].items())},
            "inputs": [str(p) for p in inputs], "method": r.method, "weights": r.weights,
        })  # fmt: skip
        if self.state.get("merge", {}).get("fingerprint") == fp and (target / LINEAGE).is_file():
            self.result.merge = {"skipped": True, **self.state["merge"]["result"]}
            return
        shutil.rmtree(target, ignore_errors=True)
        merge = merge_models(inputs, target, weights=r.weights, method=r.method).as_dict()
        merge_lineage = json.loads((target / LINEAGE).read_text(encoding="utf-8"))
        merge_lineage["inputs"] = [str(p) for p in inputs]  # the stages' lineages are below, once
        stages = [
            {"name": name, **{k: v for k, v in record.items() if k != "result"},
             "lineage": json.loads((Path(record["out"]) / LINEAGE).read_text(encoding="utf-8"))}
            for name, record in self.state["stages"].items()
        ]  # fmt: skip
        write_json(
            target / LINEAGE,
            lineage_record(kind="recipe", recipe=str(r.source), base_model=r.model, stages=stages,
                           merge=merge_lineage),
        )  # fmt: skip
        self.state["merge"] = {"fingerprint": fp, "result": merge}
        write_json(self.state_file, self.state)
        self.result.merge = {"skipped": False, **merge}


def _load(stage: StageSpec) -> TrainData:
    options = stage.options
    return load_pairs(stage.data, options.get("split", "train"), skip_empty=options.get("skip_empty", False))


def _check_merge(recipe: Recipe, config: EmbeddingTrainConfig, pairs: int, runs: int) -> None:
    """Refuse, before stage 1 trains, a merge that stage 2's saved models cannot supply."""
    where = f"{recipe.source} [merge]"
    if recipe.last * runs < 2:
        raise InvalidRequest(
            f"{where}: last = {recipe.last} with one stage-2 run merges one model; set last >= 2"
        )
    if recipe.weights is not None and len(recipe.weights) != recipe.last * runs:
        raise InvalidRequest(
            f"{where}: {len(recipe.weights)} weights for {recipe.last * runs} merged models "
            f"(last = {recipe.last} of {runs} stage-2 run(s))"
        )
    if recipe.last == 1:
        return
    steps = len(batch_schedule(pairs, config))
    saved = (steps - 1) // config.save_steps if config.save_steps else 0
    if saved < recipe.last - 1:
        raise InvalidRequest(
            f"{where}: last = {recipe.last} needs {recipe.last - 1} checkpoints before stage 2's final "
            f"step {steps}, but save_steps = {config.save_steps} saves {saved}; lower [stage2] save_steps"
        )


def _saved_models(run: Path, last: int) -> list[Path]:
    """The run's final model after its ``last - 1`` latest checkpoints before the final step, oldest first."""
    lineage = json.loads((run / LINEAGE).read_text(encoding="utf-8"))
    final = int(lineage.get("step", lineage.get("steps", 0)))
    steps = sorted(
        int(p.name.split("-")[1]) for p in run.glob("checkpoint-*") if p.name.split("-")[1].isdigit()
    )
    before = [s for s in steps if s < final][-(last - 1) :] if last > 1 else []
    return [*(run / f"checkpoint-{s}" for s in before), run]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(_plain(value), sort_keys=True).encode("utf-8")).hexdigest()
