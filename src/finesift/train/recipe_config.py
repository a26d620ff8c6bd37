"""The staged recipe's TOML file, read and checked before anything trains.

::

    model = "Qwen/Qwen3-Embedding-0.6B"   # base model: hub id or directory
    out = "runs/recipe"                    # stage1/, stage2/ (stage2-seed-S/ for several seeds), model/

    [defaults]            # optional: `train embedding` options both stages share
    max_length = 256

    [stage1]              # weakly supervised pairs: a large batch, in-batch negatives only
    data = "weak.jsonl"
    batch_size = 256      # stage 1's defaults: hard_negatives = 0

    [stage2]              # supervised pairs with mined hard negatives, from stage 1's model
    data = "labelled"     # BEIR folder (split = "train") or JSONL
    hard_negatives = 3
    save_steps = 50       # checkpoints to merge
    seeds = [0]           # optional: one stage-2 run per seed

    [merge]               # optional
    last = 3              # the last N saved models of each stage-2 run (the final one and N-1 checkpoints)
    method = "slerp"      # or "linear"
    weights = [1, 1, 2]   # optional, one per merged model, oldest first

Relative paths are relative to the TOML file. A stage table takes every option of ``finesift train
embedding`` (the fields of :class:`~finesift.train.config.EmbeddingTrainConfig`, ``dims`` as a list)
except ``model``, ``out``, ``resume``, ``progress`` and ``save``, which the recipe sets. An unknown
table or key, a value of the wrong type, or a merge that stage 2's checkpoints cannot supply is an
:class:`~finesift.errors.InvalidRequest` naming the file, the table and the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from finesift.errors import InvalidRequest, NotFound
from finesift.train.config import EmbeddingTrainConfig

RESERVED = frozenset({"model", "out", "resume", "progress", "save"})
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {"stage1": {"hard_negatives": 0}, "stage2": {}}
TABLES = ("defaults", "stage1", "stage2", "merge")


@dataclass(frozen=True)
class StageSpec:
    """One stage: its data and the trainer options given for it (after the defaults)."""

    name: str
    data: Path
    options: dict[str, Any]


@dataclass(frozen=True)
class Recipe:
    source: Path
    model: str
    out: Path
    stage1: StageSpec
    stage2: StageSpec
    seeds: tuple[int, ...] = (0,)
    last: int = 3
    method: str = "slerp"
    weights: tuple[float, ...] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def config(self, stage: StageSpec, *, model: str, out: Path, progress: bool) -> EmbeddingTrainConfig:
        """The trainer's configuration of ``stage`` (checked)."""
        config = EmbeddingTrainConfig(model=model, out=out, progress=progress, **stage.options)
        try:
            config.check()
        except InvalidRequest as exc:
            raise InvalidRequest(f"{self.source} [{stage.name}]: {exc}") from exc
        return config


def load_recipe(path: str | Path) -> Recipe:
    """Read and check the recipe at ``path`` (see the module docstring for the format)."""
    source = Path(path).expanduser().absolute()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFound(f"recipe {str(source)!r} does not exist") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"{source} is not a readable TOML file: {exc}") from exc
    where = source.parent
    unknown = sorted(set(raw) - {"model", "out", *TABLES})
    if unknown:
        raise InvalidRequest(
            f"{source}: unknown key or table {unknown[0]!r}; valid: model, out, {', '.join(TABLES)}"
        )
    for key in ("model", "out", "stage1", "stage2"):
        if key not in raw:
            raise InvalidRequest(
                f"{source}: {key!r} is missing (a recipe needs model, out, [stage1], [stage2])"
            )
    model, out = _string(raw, "model", source), _string(raw, "out", source)
    defaults = _options(raw.get("defaults", {}), source, "defaults")
    stage1 = _stage(raw, "stage1", defaults, source)
    stage2 = _stage(raw, "stage2", defaults, source)
    seeds = tuple(
        _ints(raw["stage2"].get("seeds", [stage2.options.get("seed", 0)]), source, "stage2", "seeds")
    )
    merge = _merge_table(raw.get("merge", {}), source, several=len(seeds) > 1)
    model_path = where / model
    return Recipe(
        source, str(model_path) if model_path.is_dir() else model, where / out, stage1, stage2, seeds,
        merge["last"], merge["method"], merge["weights"], raw,
    )  # fmt: skip


def _string(table: dict[str, Any], key: str, source: Path) -> str:
    value = table[key]
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{source}: {key!r} must be a non-empty string, not {value!r}")
    return value


def _stage(raw: dict[str, Any], name: str, defaults: dict[str, Any], source: Path) -> StageSpec:
    table = raw[name]
    if not isinstance(table, dict):
        raise InvalidRequest(f"{source}: [{name}] must be a table")
    if "data" not in table:
        raise InvalidRequest(f"{source} [{name}]: 'data' is missing (a BEIR folder or a JSONL of pairs)")
    data = source.parent / _string(table, "data", source)
    if not data.exists():
        raise NotFound(f"{source} [{name}]: data {str(data)!r} does not exist")
    rest = {k: v for k, v in table.items() if k not in ("data", "seeds" if name == "stage2" else "")}
    options = {**STAGE_DEFAULTS[name], **defaults, **_options(rest, source, name)}
    return StageSpec(name, data, options)


def _options(table: Any, source: Path, name: str) -> dict[str, Any]:
    """Trainer options of one table, type-checked against EmbeddingTrainConfig's fields."""
    if not isinstance(table, dict):
        raise InvalidRequest(f"{source}: [{name}] must be a table")
    hints = typing.get_type_hints(EmbeddingTrainConfig)
    allowed = sorted(f.name for f in dataclasses.fields(EmbeddingTrainConfig) if f.name not in RESERVED)
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in RESERVED:
            raise InvalidRequest(f"{source} [{name}]: {key!r} is set by the recipe; remove it")
        if key not in allowed:
            raise InvalidRequest(
                f"{source} [{name}]: unknown option {key!r}; valid: data, {', '.join(allowed)}"
            )
        if not _fits(value, hints[key]):
            raise InvalidRequest(f"{source} [{name}]: {key} = {value!r} is not a valid {_name(hints[key])}")
        options[key] = tuple(value) if isinstance(value, list) else value
    return options


def _fits(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in get_args(hint) if arg is not type(None))
    if origin is tuple:
        return isinstance(value, list) and all(_fits(v, get_args(hint)[0]) for v in value)
    if isinstance(value, bool) or hint is bool:
        return hint is bool and isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, hint) if isinstance(hint, type) else False


def _name(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return " | ".join(map(repr, get_args(hint)))
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _ints(value: Any, source: Path, table: str, key: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(_fits(v, int) for v in value):
        raise InvalidRequest(f"{source} [{table}]: {key} must be a non-empty list of integers, not {value!r}")
    if len(set(value)) != len(value):
        raise InvalidRequest(f"{source} [{table}]: {key} repeats a value: {value!r}")
    return list(value)


def _merge_table(table: Any, source: Path, *, several: bool) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InvalidRequest(f"{source}: [merge] must be a table")
    unknown = sorted(set(table) - {"last", "method", "weights"})
    if unknown:
        raise InvalidRequest(f"{source} [merge]: unknown option {unknown[0]!r}; valid: last, method, weights")
    last = table.get("last", 1 if several else 3)
    if not _fits(last, int) or last < 1:
        raise InvalidRequest(f"{source} [merge]: last must be a positive integer, not {last!r}")
    method = table.get("method", "slerp")
    if method not in ("slerp", "linear"):
        raise InvalidRequest(f"{source} [merge]: method must be slerp or linear, not {method!r}")
    weights = table.get("weights")
    if weights is not None and (not isinstance(weights, list) or not all(_fits(w, float) for w in weights)):
        raise InvalidRequest(f"{source} [merge]: weights must be a list of numbers, not {weights!r}")
    return {"last": last, "method": method, "weights": tuple(weights) if weights is not None else None}
