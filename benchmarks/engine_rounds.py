"""Same-round A/B of finesift engine variants on a shared machine: separate processes, alternating, CPU time.

    python benchmarks/engine_rounds.py --rounds 3 --code new=src --code old=/tmp/old/src \\
        --rerank cache,nocache --embed bf16 --out benchmarks/results/engine-rounds.json

Each (round, code, variant) runs in its own process with ``OMP_WAIT_POLICY=passive`` (spin-waiting
turns other developers' load into fake CPU time; ``--wait-policy default`` measures OpenMP's own),
``--threads`` torch threads, under ``nice -n 10`` (``--nice``). On a
loaded machine wall time mostly measures the neighbours, so every entry also reports process CPU
seconds; throughput per CPU-second × threads is what the work would run at on idle cores.
Models: the true Qwen3-0.6B shape with transformers' default random init (``benchmarks/models.py``,
``--init hf``), texts and BM25 candidates from ``<shared>/data`` (``benchmarks/workload.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RERANK_VARIANTS: dict[str, dict[str, Any]] = {
    "cache": {},
    "nocache": {"prefix_cache": False},
    "fp32": {"dtype": "float32", "prefix_cache": False},
    # What a CPU without bf16 units runs (dtype auto is fp32 there), with and without fused kernels.
    "fp32cache": {"dtype": "float32"},
    "fp32nofuse": {"dtype": "float32", "fuse": "off"},
}
EMBED_VARIANTS: dict[str, dict[str, Any]] = {"bf16": {}, "fp32": {"dtype": "float32"}}


def worker(task: str, variant: str, model: str, size: int, shared: Path) -> dict[str, Any]:
    """Load, warm up (the engine's ``warm_up()`` where the tree has one, then 2 inputs), then time one
    pass; scores/vectors are returned for fidelity."""
    import torch
    import workload

    if task == "rerank":
        from finesift import load_reranker

        job = workload.rerank_jobs(shared / "data", 1, size)[0]
        rr = load_reranker(model, device="cpu", **RERANK_VARIANTS[variant])
        getattr(rr, "warm_up", lambda: None)()
        rr.score(job["query"], job["documents"][:2], instruction=job["instruction"])
        start, cpu = time.perf_counter(), time.process_time()
        out = rr.score(job["query"], job["documents"], instruction=job["instruction"])
        values: Any = [float(s) for s in out]
    else:
        from finesift import load_embedder

        texts = workload.embedding_texts(shared / "data", size)
        emb = load_embedder(model, device="cpu", **EMBED_VARIANTS[variant])
        getattr(emb, "warm_up", lambda: None)()
        emb.embed_documents(texts[:2])
        start, cpu = time.perf_counter(), time.process_time()
        values = emb.embed_documents(texts).tolist()
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "threads": torch.get_num_threads(),
        "items": size,
        "values": values,
    }


def run_one(args: argparse.Namespace, src: str, task: str, variant: str) -> dict[str, Any]:
    model = args.models / ("Qwen3-Reranker-0.6B" if task == "rerank" else "Qwen3-Embedding-0.6B")
    size = args.pairs if task == "rerank" else args.texts
    env = {
        **os.environ,
        "PYTHONPATH": src,
        "OMP_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
    }
    env = {k: v for k, v in env.items() if k != "OMP_WAIT_POLICY"}
    if args.wait_policy == "passive":
        env["OMP_WAIT_POLICY"] = "passive"
    worker_argv = ["--worker", task, variant, str(model), str(size)]
    cmd = ["nice", "-n", str(args.nice), sys.executable, __file__, *worker_argv]
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [*cmd, "--shared", str(args.shared)], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:], "load_avg_1min": load}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_avg_1min"] = round(load, 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", nargs=4, metavar=("TASK", "VARIANT", "MODEL", "SIZE"))
    p.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared")
    p.add_argument("--models", type=Path, default=HERE.parent / ".bench" / "models" / "init-hf")
    p.add_argument("--code", action="append", default=[], help="NAME=SRC_DIR, a finesift source tree")
    p.add_argument("--rerank", default="cache,nocache")
    p.add_argument("--embed", default="bf16")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pairs", type=int, default=12)
    p.add_argument("--texts", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--nice", type=int, default=10, help="niceness of each run (0 on a quiet machine)")
    p.add_argument("--wait-policy", choices=("passive", "default"), default="passive", help="OMP_WAIT_POLICY")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.worker:
        task, variant, model, size = args.worker
        print(json.dumps(worker(task, variant, model, int(size), args.shared)))
        return
    codes = dict(c.split("=", 1) for c in args.code) or {"worktree": str(HERE.parent / "src")}
    plan = [("rerank", v) for v in args.rerank.split(",") if v] + [
        ("embed", v) for v in args.embed.split(",") if v
    ]
    entries = []
    for rnd in range(1, args.rounds + 1):
        for name, src in codes.items():
            for task, variant in plan:
                res = run_one(args, src, task, variant)
                entries.append({"round": rnd, "code": name, "task": task, "variant": variant, **res})
                print(json.dumps({k: v for k, v in entries[-1].items() if k != "values"}), file=sys.stderr)
    meta = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    text = json.dumps({**meta, "wait_policy": args.wait_policy, "entries": entries}, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
