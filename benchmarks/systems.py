"""One measured system per process: ``python benchmarks/systems.py SPEC.json RESULT.json``.

Each system loads its model, warms up (finesift: the engine's own ``warm_up()``, which compiles what
its first large forward would, timed as ``warm_up_seconds``; then two inputs, as every system),
resets the peak-RSS counter, then runs the whole workload once. Running every system in its own
process keeps peak memory per system and stops one system's allocator state from helping or hurting
the next.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def _rss_mb(field: str) -> float:
    """VmHWM (peak) or VmRSS of this process in MiB, from /proc (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


#: Name parts of a finesift system and the settings they set ("finesift-fp32-nocache", ...).
FINESIFT_VARIANTS: dict[str, dict[str, Any]] = {
    "int8": {"quantize": "int8"},
    "fp32": {"dtype": "float32"},
    "nocache": {"prefix_cache": False},
    "transformers": {"forward": "transformers"},
    "nofuse": {"fuse": "off"},
    "packed": {"forward": "packed"},
    "fp16": {"dtype": "float16"},
}
#: Model-card variants: the dtype it loads in (None: the checkpoint's own, as the card's plain code).
REFERENCE_DTYPES = {"reference-default": None, "reference-fp32": "float32", "reference-fp16": "float16"}


def device_of(spec: dict[str, Any]) -> str:
    return str(spec.get("device", "cpu"))


def sync(device: str) -> None:
    """Wait for queued GPU work, so that a timer read after it covers the work."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _reference_dtype(system: str) -> Any:
    import torch

    if system not in REFERENCE_DTYPES:
        raise SystemExit(f"unknown model-card system {system!r}; choose one of {', '.join(REFERENCE_DTYPES)}")
    name = REFERENCE_DTYPES[system]
    return None if name is None else getattr(torch, name)


def warm_up(engine: Any) -> float:
    """Seconds of the finesift engine's ``warm_up()``: the one-time cost a server pays at start."""
    start = time.perf_counter()
    engine.warm_up()
    return round(time.perf_counter() - start, 1)


def finesift_options(system: str) -> dict[str, Any]:
    """Settings of a finesift system name: every part after "finesift" names one variant."""
    opts: dict[str, Any] = {}
    for part in system.split("-")[1:]:
        if part not in FINESIFT_VARIANTS:
            raise SystemExit(f"unknown finesift variant {part!r} in {system!r}")
        opts.update(FINESIFT_VARIANTS[part])
    return opts


def embed_runner(spec: dict[str, Any]) -> tuple[Callable[[list[str]], Any], float | None]:
    """The system as a function of the texts, and its warm-up seconds (finesift only)."""
    import numpy as np

    system, path, device = spec["system"], spec["model"], device_of(spec)
    if system.startswith("finesift"):
        from finesift import load_embedder

        emb = load_embedder(path, device=device, max_length=spec["max_length"], **finesift_options(system))
        return (lambda texts: emb.embed_documents(texts)), warm_up(emb)
    if system.startswith("reference"):
        from finesift.testing.reference import ReferenceEmbedder

        ref = ReferenceEmbedder(
            path, dtype=_reference_dtype(system), max_length=spec["max_length"], device=device
        )
        return (lambda texts: np.concatenate([ref.embed(c) for c in _chunks(texts, spec["ref_batch"])])), None
    if system == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(path, device=device)
        st.max_seq_length = spec["max_length"]
        return (lambda texts: st.encode(texts, batch_size=spec["st_batch"], normalize_embeddings=True)), None
    raise SystemExit(f"unknown embedding system {system!r}")


def rerank_runner(spec: dict[str, Any]) -> tuple[Callable[[list[dict[str, Any]]], Any], float | None]:
    """The system as a function of the rerank jobs, and its warm-up seconds (finesift only)."""
    system, path, device = spec["system"], spec["model"], device_of(spec)
    if system.startswith("finesift"):
        from finesift import load_reranker

        rr = load_reranker(path, device=device, max_length=spec["max_length"], **finesift_options(system))
        return (
            lambda jobs: [rr.score(j["query"], j["documents"], instruction=j["instruction"]) for j in jobs]
        ), warm_up(rr)
    if system.startswith("reference"):
        from finesift.testing.reference import ReferenceReranker

        ref = ReferenceReranker(
            path, dtype=_reference_dtype(system), max_length=spec["max_length"], device=device
        )

        def run(jobs: list[dict[str, Any]]) -> list[list[float]]:
            return [
                [
                    s
                    for c in _chunks(j["documents"], spec["ref_batch"])
                    for s in ref.score(j["query"], c, j["instruction"])
                ]
                for j in jobs
            ]

        return run, None
    raise SystemExit(f"unknown reranking system {system!r}")


def ceiling(spec: dict[str, Any]) -> dict[str, Any]:
    """Best bf16 (and fp32) GFLOP/s of plain linear layers at the model's shapes, on the spec's device.

    On a GPU it also times one 8192³ bf16 product, the figure the device notes quote for the card.
    """
    import torch

    device = device_of(spec)
    h, inter, tokens = spec["hidden"], spec["intermediate"], spec["tokens"]
    shapes = [(tokens, k, n) for k, n in ((h, inter), (inter, h), (h, 2 * h))]
    out: dict[str, Any] = {"device": device}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        out[f"{name}_gflops"] = round(max(_linear_gflops(m, k, n, dtype, device) for m, k, n in shapes), 1)
    if device.startswith("cuda"):
        out["bf16_8192_cubed_gflops"] = round(_linear_gflops(8192, 8192, 8192, torch.bfloat16, device), 1)
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def _linear_gflops(m: int, k: int, n: int, dtype: Any, device: str) -> float:
    import torch

    x = torch.randn(m, k, dtype=dtype, device=device)
    w = torch.randn(n, k, dtype=dtype, device=device)
    reps = 20 if device.startswith("cuda") else 5
    for _ in range(2 if device.startswith("cuda") else 1):
        torch.nn.functional.linear(x, w)
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        torch.nn.functional.linear(x, w)
    sync(device)
    return 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Load, warm up, reset peak RSS, run once; timings in seconds, memory in MiB."""
    import torch

    device = device_of(spec)
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    start = time.perf_counter()
    runner, warm_up_s = embed_runner(spec) if spec["task"] == "embed" else rerank_runner(spec)
    load_s = time.perf_counter() - start - (warm_up_s or 0.0)
    items = spec["items"]
    runner(items[:2] if spec["task"] == "embed" else [{**items[0], "documents": items[0]["documents"][:2]}])
    peak_load = _rss_mb("VmHWM")
    reset = _reset_peak_rss()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    result = runner(items)
    sync(device)
    seconds = time.perf_counter() - start
    out = {
        "seconds": seconds,
        "load_seconds": round(load_s, 1),
        "peak_rss_mib": round(_rss_mb("VmHWM"), 1),
        "peak_rss_load_mib": round(peak_load, 1),
        "peak_rss_reset": reset,
        "warm_up_seconds": warm_up_s,
        "threads": torch.get_num_threads(),
        "device": device,
        "values": _values(spec["task"], result),
    }
    if device.startswith("cuda"):
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    if spec.get("profile") and spec["system"].startswith("finesift"):
        out["time_shares"] = time_shares(runner, _profile_items(spec), device)
    return out


def _values(task: str, result: Any) -> list[Any]:
    import numpy as np

    if task == "embed":
        return list(np.asarray(getattr(result, "vectors", result), dtype=np.float32).tolist())
    return [list(getattr(r, "scores", r)) for r in result]


def _profile_items(spec: dict[str, Any]) -> list[Any]:
    """A slice of the workload for the profiled pass (profiling a whole run would double its time)."""
    items = spec["items"]
    if spec["task"] == "embed":
        return list(items[:8])
    return [{**items[0], "documents": items[0]["documents"][:4]}]


#: torch profiler op names by kind of work.
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")


def time_shares(runner: Callable[[Any], Any], items: list[Any], device: str = "cpu") -> dict[str, float]:
    """Share of self time in matmuls, attention kernels and everything else, on a profiled pass.

    This is what explains a gap to the ceiling: matmuls already run near it, attention and element-wise
    kernels do not. On a GPU it is the kernels' time, charged to the aten op that launched them.
    """
    from torch.profiler import ProfilerActivity, profile

    gpu = device.startswith("cuda")
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if gpu else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        runner(items)
        sync(device)
    totals = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    for event in prof.key_averages():
        name = event.key
        if gpu and not name.startswith("aten::"):
            continue
        kind = (
            "matmul"
            if name in MATMUL_OPS
            else "attention"
            if "attention" in name and name.startswith("aten::_")
            else "other"
        )
        totals[kind] += float(event.self_device_time_total if gpu else event.self_cpu_time_total)
    whole = sum(totals.values()) or 1.0
    return {k: round(v / whole, 3) for k, v in totals.items()}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = ceiling(spec) if spec["task"] == "ceiling" else measure(spec)
    Path(sys.argv[2]).write_text(json.dumps(out), encoding="utf-8")


if __name__ == "__main__":
    main()
