"""``finesift merge``: spherical (or linear) interpolation of two or more checkpoints, tensor by tensor.

For flattened tensors a, b and t in [0, 1], with θ the angle between them::

    slerp(a, b, t) = sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b

falling back to linear interpolation when a or b is zero or they are nearly parallel. t=0 and t=1
return the inputs bit-exactly, and a tensor equal in both is copied unchanged (so A merged with A is A).

**N checkpoints** M_1 … M_N with weights w_1 … w_N (default equal) are merged by successive slerp::

    R_1 = M_1,   R_k = slerp(R_{k-1}, M_k, t_k),   t_k = w_k / (w_1 + … + w_k)

so each model enters with its share of the weight seen so far (1/k for equal weights) and the last
R_N is the merge. Why this chain rather than the normalised spherical mean (an iterative Karcher mean,
or mergekit's multislerp): for N = 2 it *is* the two-model slerp, bit for bit (weights (1-t, t) give
t_2 = t); it has a closed form, no iteration or tolerance; it reads two checkpoints at a time, whatever
N; and N copies of one model give that model exactly. Its cost: for N ≥ 3 the result depends on the
order when the inputs are far apart (the spherical mean would not). Checkpoints of one run are nearly
parallel, where slerp is nearly linear and every order gives nearly the weighted mean. The order is
the order given.

Checkpoints must agree in tensor names, shapes and dtypes, in config (ignoring bookkeeping fields such
as ``_name_or_path`` and ``dtype``) and in tokenizer files; the first difference is named. Every other
file (tokenizer, config, sentence-transformers modules) is copied from the first, and a lineage JSON
is written.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from finesift.errors import Conflict, InvalidRequest, NotFound
from finesift.train.checkpoint import LINEAGE, STATE, lineage_record, write_json

Method = Literal["slerp", "linear"]
PARALLEL_EPS = 1e-6
IGNORED_CONFIG = frozenset({"_name_or_path", "torch_dtype", "dtype", "transformers_version", "_commit_hash"})
IGNORED_TOKENIZER = frozenset({"name_or_path", "tokenizer_file"})
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
)
_SKIP_NAMES = frozenset({LINEAGE, STATE, "README.md", "finesift-mined-negatives.json"})
_SKIP_SUFFIXES = (".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".onnx")


@dataclass
class MergeResult:
    """What a merge did: ``t`` is B's weight of a two-model merge (None for more), ``weights`` each
    input's normalised weight; a tensor counts as slerp if any step slerped it, else linear, else copied."""

    out: str
    method: str
    t: float | None
    tensors: int
    slerp: int
    linear: int
    copied: int
    weights: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def slerp(a: Any, b: Any, t: float) -> tuple[Any, str]:
    """(merged tensor in a's dtype, how): "copied" at t=0/t=1 or equal inputs, "slerp" or "linear"."""
    import torch

    if t == 0 or torch.equal(a, b):
        return a.clone(), "copied"
    if t == 1:
        return b.clone(), "copied"
    x, y = a.double().flatten(), b.double().flatten()
    nx, ny = float(x.norm()), float(y.norm())
    if nx == 0 or ny == 0:
        return lerp(a, b, t), "linear"
    cos = max(-1.0, min(1.0, float(x @ y) / (nx * ny)))
    if 1 - abs(cos) < PARALLEL_EPS:
        return lerp(a, b, t), "linear"
    theta = math.acos(cos)
    sin = math.sin(theta)
    out = (math.sin((1 - t) * theta) / sin) * x + (math.sin(t * theta) / sin) * y
    return out.reshape(a.shape).to(a.dtype), "slerp"


def lerp(a: Any, b: Any, t: float) -> Any:
    """(1-t)·a + t·b computed in float64, returned in a's dtype; exact copies at t=0 and t=1."""
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    return ((1 - t) * a.double() + t * b.double()).to(a.dtype)


def merge_checkpoints(
    a: str | Path, b: str | Path, out: str | Path, *, t: float = 0.5, method: str = "slerp"
) -> MergeResult:
    """Merge checkpoint directories ``a`` and ``b`` into ``out`` (which must not hold a model yet)."""
    if not 0 <= t <= 1 or math.isnan(t):
        raise InvalidRequest(f"--t must lie in [0, 1], not {t}")
    return _merge([Path(a), Path(b)], Path(out), [t], [1 - t, t], method)


def merge_models(
    models: Sequence[str | Path],
    out: str | Path,
    *,
    weights: Sequence[float] | None = None,
    method: str = "slerp",
) -> MergeResult:
    """Merge N ≥ 2 checkpoint directories into ``out`` by successive slerp (see the module docstring).

    ``weights``: one non-negative weight per model (default equal), normalised to sum 1.
    """
    paths = [Path(m) for m in models]
    if len(paths) < 2:
        raise InvalidRequest(f"merge needs at least two checkpoints, got {len(paths)}")
    given = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(given) != len(paths):
        raise InvalidRequest(f"--weights gives {len(given)} weights for {len(paths)} checkpoints")
    if any(w < 0 or math.isnan(w) or math.isinf(w) for w in given) or sum(given) <= 0:
        raise InvalidRequest(f"--weights must be non-negative with a positive sum, not {given}")
    return _merge(paths, Path(out), chain_steps(given), [w / sum(given) for w in given], method)


def chain_steps(weights: Sequence[float]) -> list[float]:
    """t_k = w_k / (w_1 + … + w_k) for k = 2 … N: model k's weight against the merge before it."""
    steps, seen = [], float(weights[0])
    for w in weights[1:]:
        seen += w
        steps.append(w / seen if seen > 0 else 0.0)
    return steps


def _merge(
    paths: list[Path], target: Path, steps: list[float], weights: list[float], method: str
) -> MergeResult:
    from safetensors.torch import save_file

    paths, target = [p.expanduser() for p in paths], target.expanduser()
    if method not in ("slerp", "linear"):
        raise InvalidRequest(f"--method must be slerp or linear, not {method!r}")
    for other in paths[1:]:
        files = check_compatible(paths[0], other)  # the first model's files, once all match
    if target.exists() and any(target.iterdir()):
        raise Conflict(f"--out {str(target)!r} is not empty; choose a new directory")
    counts = {"slerp": 0, "linear": 0, "copied": 0}
    target.mkdir(parents=True, exist_ok=True)
    for rel in files:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        if not rel.endswith(".safetensors"):
            shutil.copy2(paths[0] / rel, target / rel)
            continue
        merged = _merge_file(rel, paths, steps, method, counts)
        save_file(merged, str(target / rel), metadata={"format": "pt"})
    t = steps[0] if len(paths) == 2 else None
    result = MergeResult(str(target), method, t, sum(counts.values()), **counts, weights=weights)
    write_json(
        target / LINEAGE,
        lineage_record(
            kind="merge", method=method, t=t, weights=weights, order="successive slerp in input order",
            inputs=[_input(p) for p in paths], tensors=counts,
        ),
    )  # fmt: skip
    return result


def _merge_file(
    rel: str, paths: list[Path], steps: list[float], method: str, counts: dict[str, int]
) -> dict[str, Any]:
    """One weight file: the first model's tensors, merged with each later model's in turn."""
    from safetensors.torch import load_file

    running: dict[str, Any] = load_file(str(paths[0] / rel))
    rank = {"copied": 0, "linear": 1, "slerp": 2}
    how = dict.fromkeys(running, "copied")
    for path, t in zip(paths[1:], steps, strict=True):
        other = load_file(str(path / rel))
        for name in running:
            running[name], step_how = _merge_one(running[name], other[name], t, method)
            how[name] = max(how[name], step_how, key=rank.__getitem__)
        del other
    for value in how.values():
        counts[value] += 1
    return running


def _merge_one(a: Any, b: Any, t: float, method: str) -> tuple[Any, str]:
    import torch

    if not a.is_floating_point():
        if not torch.equal(a, b):
            raise Conflict("integer tensors differ between the checkpoints; they cannot be interpolated")
        return a.clone(), "copied"
    if method == "slerp":
        return slerp(a, b, t)
    if t == 0 or torch.equal(a, b):
        return a.clone(), "copied"
    if t == 1:
        return b.clone(), "copied"
    return lerp(a, b, t), "linear"


def _input(path: Path) -> dict[str, Any]:
    lineage = path / LINEAGE
    record: dict[str, Any] = {"path": str(path)}
    if lineage.is_file():
        record["lineage"] = json.loads(lineage.read_text(encoding="utf-8"))
    return record


def model_files(root: Path) -> list[str]:
    """Relative paths of the files a merge reads or copies (no checkpoints, exports, lineage)."""
    if not (root / "config.json").is_file():
        raise NotFound(f"{str(root)!r} is not a model directory (no config.json)")
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        top = rel.parts[0]
        if path.is_dir() or top.startswith((".", "checkpoint-")) or top in ("onnx", "openvino"):
            continue
        if path.name in _SKIP_NAMES or path.name.endswith(_SKIP_SUFFIXES):
            continue
        found.append(rel.as_posix())
    if not any(f.endswith(".safetensors") for f in found):
        raise NotFound(f"{str(root)!r} holds no .safetensors weights to merge")
    return found


def check_compatible(a: Path, b: Path) -> list[str]:
    """The files of ``a``; refuses, naming the first difference, when ``b`` does not match it."""
    files_a, files_b = model_files(a), model_files(b)
    weights_a = [f for f in files_a if f.endswith(".safetensors")]
    weights_b = [f for f in files_b if f.endswith(".safetensors")]
    if weights_a != weights_b:
        extra = sorted(set(weights_a) ^ set(weights_b))[0]
        raise Conflict(f"the checkpoints hold different weight files: {extra!r} is in only one of them")
    for rel in [f for f in files_a if f.endswith("config.json") and "tokenizer" not in f]:
        _compare_json(a / rel, b / rel, rel, IGNORED_CONFIG)
    for name in TOKENIZER_FILES:
        _compare_tokenizer(a, b, name)
    for rel in weights_a:
        _compare_tensors(a / rel, b / rel, rel)
    return files_a


def _compare_json(fa: Path, fb: Path, rel: str, ignored: frozenset[str]) -> None:
    if not fb.is_file():
        raise Conflict(f"{rel} is missing from {fb.parent}")
    da, db = _load_json(fa), _load_json(fb)
    for key in sorted((set(da) | set(db)) - ignored):
        if da.get(key) != db.get(key):
            raise Conflict(f"{rel} differs at {key!r}: {da.get(key)!r} vs {db.get(key)!r}")


def _compare_tokenizer(a: Path, b: Path, name: str) -> None:
    fa, fb = a / name, b / name
    if not fa.is_file() and not fb.is_file():
        return
    if fa.is_file() != fb.is_file():
        raise Conflict(f"the tokenizers differ: {name} is in only one of the checkpoints")
    if name.endswith(".json") and name != "tokenizer.json":
        _compare_json(fa, fb, name, IGNORED_TOKENIZER)
    elif fa.read_bytes() != fb.read_bytes():
        raise Conflict(f"the tokenizers differ: {name} is not the same file")


def _compare_tensors(fa: Path, fb: Path, rel: str) -> None:
    from safetensors import safe_open

    with safe_open(str(fa), "pt") as ha, safe_open(str(fb), "pt") as hb:
        names_a, names_b = sorted(ha.keys()), sorted(hb.keys())
        if names_a != names_b:
            first = sorted(set(names_a) ^ set(names_b))[0]
            raise Conflict(f"{rel}: tensor {first!r} is in only one of the checkpoints")
        for name in names_a:
            sa, sb = ha.get_slice(name), hb.get_slice(name)
            if sa.get_shape() != sb.get_shape() or sa.get_dtype() != sb.get_dtype():
                raise Conflict(
                    f"{rel}: tensor {name!r} is {sa.get_dtype()}{sa.get_shape()} in one checkpoint "
                    f"and {sb.get_dtype()}{sb.get_shape()} in the other"
                )


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"{path} is unreadable or not JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}
