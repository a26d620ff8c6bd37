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
}


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
    import torch

    system, path = spec["system"], spec["model"]
    if system.startswith("finesift"):
        from finesift import load_embedder

        emb = load_embedder(path, device="cpu", max_length=spec["max_length"], **finesift_options(system))
        return (lambda texts: emb.embed_documents(texts)), warm_up(emb)
    if system.startswith("reference"):
        from finesift.testing.reference import ReferenceEmbedder

        dtype = torch.float32 if system == "reference-fp32" else None
        ref = ReferenceEmbedder(path, dtype=dtype, max_length=spec["max_length"])
        return (lambda texts: np.concatenate([ref.embed(c) for c in _chunks(texts, spec["ref_batch"])])), None
    if system == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(path, device="cpu")
        st.max_seq_length = spec["max_length"]
        return (lambda texts: st.encode(texts, batch_size=spec["st_batch"], normalize_embeddings=True)), None
    raise SystemExit(f"unknown embedding system {system!r}")


def rerank_runner(spec: dict[str, Any]) -> tuple[Callable[[list[dict[str, Any]]], Any], float | None]:
    """The system as a function of the rerank jobs, and its warm-up seconds (finesift only)."""
    import torch

    system, path = spec["system"], spec["model"]
    if system.startswith("finesift"):
        from finesift import load_reranker

        rr = load_reranker(path, device="cpu", max_length=spec["max_length"], **finesift_options(system))
        return (
            lambda jobs: [rr.score(j["query"], j["documents"], instruction=j["instruction"]) for j in jobs]
        ), warm_up(rr)
    if system.startswith("reference"):
        from finesift.testing.reference import ReferenceReranker

        dtype = torch.float32 if system == "reference-fp32" else None
        ref = ReferenceReranker(path, dtype=dtype, max_length=spec["max_length"])

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
    """Best bf16 (and fp32) GFLOP/s of plain linear layers at the model's shapes."""
    import torch

    h, inter, tokens = spec["hidden"], spec["intermediate"], spec["tokens"]
    out: dict[str, Any] = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        best = 0.0
        for k, n in ((h, inter), (inter, h), (h, 2 * h)):
            x, w = torch.randn(tokens, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
            torch.nn.functional.linear(x, w)
            reps, start = 5, time.perf_counter()
            for _ in range(reps):
                torch.nn.functional.linear(x, w)
            best = max(best, 2 * tokens * k * n * reps / (time.perf_counter() - start) / 1e9)
        out[f"{name}_gflops"] = round(best, 1)
    return out


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Load, warm up, reset peak RSS, run once; timings in seconds, memory in MiB."""
    import numpy as np
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    start = time.perf_counter()
    runner, warm_up_s = embed_runner(spec) if spec["task"] == "embed" else rerank_runner(spec)
    load_s = time.perf_counter() - start - (warm_up_s or 0.0)
    items = spec["items"]
    runner(items[:2] if spec["task"] == "embed" else [{**items[0], "documents": items[0]["documents"][:2]}])
    peak_load = _rss_mb("VmHWM")
    reset = _reset_peak_rss()
    start = time.perf_counter()
    result = runner(items)
    seconds = time.perf_counter() - start
    if spec["task"] == "embed":
        values = np.asarray(getattr(result, "vectors", result), dtype=np.float32).tolist()
    else:
        values = [list(getattr(r, "scores", r)) for r in result]
    out = {
        "seconds": seconds,
        "load_seconds": round(load_s, 1),
        "peak_rss_mib": round(_rss_mb("VmHWM"), 1),
        "peak_rss_load_mib": round(peak_load, 1),
        "peak_rss_reset": reset,
        "warm_up_seconds": warm_up_s,
        "threads": torch.get_num_threads(),
        "values": values,
    }
    if spec.get("profile") and spec["system"].startswith("finesift"):
        out["time_shares"] = time_shares(runner, _profile_items(spec))
    return out


def _profile_items(spec: dict[str, Any]) -> list[Any]:
    """A slice of the workload for the profiled pass (profiling a whole run would double its time)."""
    items = spec["items"]
    if spec["task"] == "embed":
        return list(items[:8])
    return [{**items[0], "documents": items[0]["documents"][:4]}]


#: torch profiler op names by kind of work.
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")


def time_shares(runner: Callable[[Any], Any], items: list[Any]) -> dict[str, float]:
    """Share of self CPU time in matmuls, attention kernels and everything else, on a profiled pass.

    This is what explains a gap to the ceiling: matmuls already run near it, attention and element-wise
    kernels do not.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        runner(items)
    totals = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    for event in prof.key_averages():
        name = event.key
        kind = (
            "matmul"
            if name in MATMUL_OPS
            else "attention"
            if "attention" in name and name.startswith("aten::_")
            else "other"
        )
        totals[kind] += float(event.self_cpu_time_total)
    whole = sum(totals.values()) or 1.0
    return {k: round(v / whole, 3) for k, v in totals.items()}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = ceiling(spec) if spec["task"] == "ceiling" else measure(spec)
    Path(sys.argv[2]).write_text(json.dumps(out), encoding="utf-8")


if __name__ == "__main__":
    main()
