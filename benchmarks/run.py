"""Embedding and reranking speed of finesift next to the model-card code and sentence-transformers.

    python benchmarks/run.py                        # both tasks, short default sizes
    python benchmarks/run.py --task embed --texts 96
    python benchmarks/run.py --task rerank --queries 2
    python benchmarks/run.py --device cuda --workload W.json --embed-systems finesift,reference-default

A workload file (``benchmarks/workload.py --out W.json``) stands in for ``<shared>/data`` where that folder
cannot go (a lent GPU machine).

Builds random-weight models of the true Qwen3-0.6B shape from ``<shared>/models/qwen3-0.6b`` (or
any config given), runs each system in its own process on the same mixed workload from
``<shared>/data``, and prints one JSON document: throughput, peak RSS, ratios, a bf16 matmul
ceiling measured in the same run with model-FLOP utilisation, fidelity, and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

import flops  # noqa: E402
import models  # noqa: E402
import workload  # noqa: E402

EMBED_SYSTEMS = "finesift,finesift-int8,reference-default,reference-fp32,sentence-transformers"
RERANK_SYSTEMS = ",".join(
    [
        "finesift",
        "finesift-nocache",
        "finesift-int8",
        "reference-default",
        "reference-fp32",
        "finesift-fp32",
        "finesift-fp32-nocache",
    ]
)
#: Systems that only check fidelity run on the first --fidelity-docs candidates of each query.
SUBSET_SYSTEMS = ("finesift-fp32", "finesift-fp32-nocache")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="shared folder (models, data)")
    p.add_argument(
        "--models-dir", type=Path, default=ROOT / ".bench" / "models", help="where built models go"
    )
    p.add_argument(
        "--embedding-config", type=Path, help="config.json for the embedding model (default: shared)"
    )
    p.add_argument("--reranker-config", type=Path, help="config.json for the reranker (default: shared)")
    p.add_argument(
        "--init",
        choices=models.INITS,
        default="spread",
        help="random weights: spread (std 0.08, the test models') or hf (transformers' init, std 0.02)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]: where every system runs")
    p.add_argument("--workload", type=Path, help="texts and rerank jobs from benchmarks/workload.py --out")
    p.add_argument("--task", nargs="+", choices=("embed", "rerank"), default=["embed", "rerank"])
    p.add_argument(
        "--texts", type=int, help="embedding texts in the mixed workload (default 32; a file's: all of them)"
    )
    p.add_argument("--queries", type=int, help="rerank queries, alternating Chinese / code (default 1)")
    p.add_argument("--candidates", type=int, help="BM25 candidates per rerank query (default 40)")
    p.add_argument("--layers", type=int, default=0, help="keep the first N decoder layers (0: all)")
    p.add_argument("--embed-systems", default=EMBED_SYSTEMS)
    p.add_argument("--rerank-systems", default=RERANK_SYSTEMS)
    p.add_argument("--ref-batch", type=int, default=16, help="texts/pairs per model-card call")
    p.add_argument("--st-batch", type=int, default=32, help="sentence-transformers batch size (its default)")
    p.add_argument("--fidelity-docs", type=int, default=8, help="candidates per query for fp32 fidelity runs")
    p.add_argument("--max-length", type=int, default=8192)
    p.add_argument("--threads", type=int, default=0, help="torch threads per system (0: torch default)")
    p.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the profiled pass that splits finesift's time into matmul / attention / other",
    )
    p.add_argument("--out", type=Path, help="also write the JSON here")
    return p.parse_args(argv)


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one system in a fresh process and return its measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out_file = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
        proc = subprocess.run(
            [sys.executable, str(HERE / "systems.py"), str(spec_file), str(out_file)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
        result: dict[str, Any] = json.loads(out_file.read_text(encoding="utf-8"))
        return result


def machine(device: str = "cpu") -> dict[str, Any]:
    import torch
    import transformers

    from finesift.runtime.device import cpu_flags

    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in cpu_flags(),
        "amx": "amx_bf16" in cpu_flags(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        **(gpu_info(device) if device.startswith("cuda") else {}),
    }


def gpu_info(device: str) -> dict[str, Any]:
    import torch

    props = torch.cuda.get_device_properties(device)
    return {
        "gpu": props.name,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "gpu_multiprocessors": props.multi_processor_count,
        "cuda": torch.version.cuda,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_systems(
    task: str, names: list[str], base: dict[str, Any], items_for: Any
) -> dict[str, dict[str, Any]]:
    results = {}
    for name in names:
        before = load_average()[0]
        started = time.time()
        res = run_worker({**base, "task": task, "system": name, "items": items_for(name)})
        res["load_avg_1min_before"] = before
        res["wall_seconds"] = round(time.time() - started, 1)
        print(f"[bench] {task} {name}: {res.get('seconds', res.get('error'))}", file=sys.stderr, flush=True)
        results[name] = res
    return results


def bench_embed(
    args: argparse.Namespace, path: Path, ceiling_gflops: float, peak_tflops: float | None = None
) -> dict[str, Any]:
    from transformers import AutoTokenizer

    texts = (
        workload.load(args.workload)["texts"][: args.texts]
        if args.workload
        else workload.embedding_texts(args.shared / "data", args.texts or 32)
    )
    if not texts:
        raise SystemExit(f"{args.workload} holds no embedding texts; run with --task rerank")
    tok = AutoTokenizer.from_pretrained(str(path))
    lengths = [min(len(ids), args.max_length) for ids in tok(texts)["input_ids"]]
    shape = models.model_shape(path)
    model_flops = sum(flops.sequence_flops(shape, n) for n in lengths)
    base = {
        "model": str(path),
        "max_length": args.max_length,
        "ref_batch": args.ref_batch,
        "st_batch": args.st_batch,
        "threads": args.threads,
        "device": args.device,
        "profile": not args.no_profile,
    }
    names = [s for s in args.embed_systems.split(",") if s]
    results = run_systems("embed", names, base, lambda name: texts)
    for res in results.values():
        if "seconds" in res:
            res["tok_per_s"] = round(sum(lengths) / res["seconds"], 1)
            res["model_gflops_per_s"] = round(model_flops / res["seconds"] / 1e9, 1)
            res["mfu_of_bf16_ceiling"] = round(model_flops / res["seconds"] / 1e9 / ceiling_gflops, 3)
            if peak_tflops:
                res["mfu_of_spec_peak"] = round(model_flops / res["seconds"] / 1e12 / peak_tflops, 3)
    return {
        "workload": {
            "texts": len(texts),
            "tokens": sum(lengths),
            "max_tokens": max(lengths),
            "mean_tokens": round(sum(lengths) / len(lengths), 1),
            "gflop": round(model_flops / 1e9, 1),
        },
        "systems": results,
        "ratios": flops.ratios(results, "tok_per_s"),
        "fidelity": flops.embed_fidelity(results),
    }


def bench_rerank(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    from finesift.rerank.transformers import TransformersReranker  # noqa: F401  (fails early if missing)

    jobs = (
        [
            {**job, "documents": job["documents"][: args.candidates]}
            for job in workload.load(args.workload)["jobs"][: args.queries]
        ]
        if args.workload
        else workload.rerank_jobs(args.shared / "data", args.queries or 1, args.candidates or 40)
    )
    if not jobs:
        raise SystemExit(f"{args.workload} holds no rerank jobs; run with --task embed")
    subset = [{**j, "documents": j["documents"][: args.fidelity_docs]} for j in jobs]
    tokens_full, tokens_subset = flops.rerank_tokens(path, jobs, args.max_length), None
    tokens_subset = flops.rerank_tokens(path, subset, args.max_length)
    base = {
        "model": str(path),
        "max_length": args.max_length,
        "ref_batch": args.ref_batch,
        "threads": args.threads,
        "device": args.device,
        "profile": not args.no_profile,
    }
    names = [s for s in args.rerank_systems.split(",") if s]
    results = run_systems("rerank", names, base, lambda name: subset if name in SUBSET_SYSTEMS else jobs)
    for name, res in results.items():
        if "seconds" in res:
            used = subset if name in SUBSET_SYSTEMS else jobs
            pairs = sum(len(j["documents"]) for j in used)
            toks = tokens_subset if name in SUBSET_SYSTEMS else tokens_full
            res["pairs"] = pairs
            res["pairs_per_s"] = round(pairs / res["seconds"], 2)
            res["prompt_tok_per_s"] = round(toks / res["seconds"], 1)
    return {
        "workload": {
            "queries": len(jobs),
            "candidates_per_query": max(len(j["documents"]) for j in jobs),
            "pairs": sum(len(j["documents"]) for j in jobs),
            "prompt_tokens": tokens_full,
            "fidelity_subset_docs": args.fidelity_docs,
        },
        "systems": results,
        "ratios": flops.ratios(results, "pairs_per_s"),
        "fidelity": flops.rerank_fidelity(results, args.fidelity_docs),
    }


def limits(report: dict[str, Any]) -> dict[str, Any]:
    """The measurements that bound the ratios: bf16 vs fp32 matmul speed, where finesift's time goes."""
    start = report.get("ceiling_start", {})
    out: dict[str, Any] = {}
    if start.get("bf16_gflops") and start.get("fp32_gflops"):
        out["bf16_over_fp32_matmul_ceiling"] = round(start["bf16_gflops"] / start["fp32_gflops"], 2)
    for part in ("embed", "rerank"):
        shares = report.get(part, {}).get("systems", {}).get(flops.FINESIFT, {}).get("time_shares")
        if shares:
            out[f"{part}_finesift_time_shares"] = shares
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.shared = args.shared.resolve()
    emb_path, rer_path = models.ensure_models(
        args.shared,
        args.models_dir,
        embedding_config=args.embedding_config,
        reranker_config=args.reranker_config,
        init=args.init,
        layers=args.layers,
    )
    shape = models.model_shape(emb_path)
    ceiling_spec = {
        "task": "ceiling",
        "hidden": shape["hidden"],
        "intermediate": shape["intermediate"],
        "tokens": 2048 if args.device == "cpu" else 16384,
        "threads": args.threads,
        "device": args.device,
    }
    report: dict[str, Any] = {
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": args.device,
        "machine": machine(args.device),
        "load_avg_start": load_average(),
        "shape": shape,
        "init": args.init,
        "layers": args.layers or shape["layers"],
    }
    report["ceiling_start"] = run_worker(ceiling_spec)
    ceiling = report["ceiling_start"].get("bf16_gflops", float("nan"))
    peak = flops.spec_peak_tflops(report["machine"].get("gpu", "")) if "gpu" in report["machine"] else None
    report["spec_bf16_peak_tflops"] = peak
    if "embed" in args.task:
        report["embed"] = bench_embed(args, emb_path, ceiling, peak)
    if "rerank" in args.task:
        report["rerank"] = bench_rerank(args, rer_path)
    report["ceiling_end"] = run_worker(ceiling_spec)
    report["load_avg_end"] = load_average()
    report["targets"] = flops.targets(report)
    report["limits"] = limits(report)
    for part in ("embed", "rerank"):
        for res in report.get(part, {}).get("systems", {}).values():
            res.pop("values", None)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
