"""finesift on the CPU beside the routes CPU users pick: ONNX Runtime (fp32, INT8), llama.cpp, and more.

    python benchmarks/cpu_peers.py --out benchmarks/results/cpu-peers.json            # the full spec
    python benchmarks/cpu_peers.py --texts 16 --docs 8 --out ...                      # a loaded machine

The true Qwen3-0.6B shapes (official configs, transformers' default random init) are built once; the
ONNX and GGUF files are made from them (benchmarks/peer_export.py). Every engine embeds the same texts
(instructed queries, Chinese paragraphs, code) and scores the same query-document prompts with the same
thread count, each run in a fresh process; engines alternate within a round (the order rotates), for
``--rounds`` rounds. Reports medians and spreads of tokens/s and pairs/s, tokens/s per core, the share of
the bf16 ceiling (MFU), peak RSS, and fidelity against finesift fp32 (min cosine, max |ΔP(yes)|).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
import peer_export  # noqa: E402
import peer_fidelity  # noqa: E402
import run as bench_run  # noqa: E402
import workload  # noqa: E402

GGUF_TYPES = ("f16", "q8_0", "q4_k_m")
COMMON = ["finesift", "finesift-fp32", "ort-fp32", "ort-int8"]
LLAMA = [f"llama-{t}" for t in GGUF_TYPES] + [f"finesift-llamacpp-{t}" for t in GGUF_TYPES]
EMBED_ENGINES = ",".join([*COMMON, *LLAMA, "sentence-transformers"])
RERANK_ENGINES = ",".join([*COMMON, *LLAMA])
TRUTH = "finesift-fp32"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="shared folder (models, data)")
    p.add_argument("--models-dir", type=Path, default=ROOT / ".bench" / "models")
    p.add_argument("--embedding-config", type=Path, help="config.json to build instead (a smoke test)")
    p.add_argument("--reranker-config", type=Path, help="config.json to build instead (a smoke test)")
    p.add_argument("--task", nargs="+", choices=("embed", "rerank"), default=["embed", "rerank"])
    p.add_argument("--texts", type=int, default=64, help="texts to embed")
    p.add_argument("--queries", type=int, default=1, help="rerank queries")
    p.add_argument("--docs", type=int, default=24, help="documents per rerank query")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="threads for every engine")
    p.add_argument("--max-length", type=int, default=2048, help="tokens per input (and llama.cpp n_ctx)")
    p.add_argument("--embed-engines", default=EMBED_ENGINES)
    p.add_argument("--rerank-engines", default=RERANK_ENGINES)
    p.add_argument(
        "--wait-policy",
        choices=("passive", "default"),
        default="passive",
        help="OMP_WAIT_POLICY for every engine (passive also stops ONNX Runtime's spinning)",
    )
    p.add_argument("--out", type=Path)
    return p.parse_args(argv)


def run_engine(spec: dict[str, Any], policy: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    env.update(TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore", OMP_NUM_THREADS=str(spec["threads"]))
    if policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out_file = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, str(HERE / "peer_engines.py"), str(spec_file), str(out_file)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
        result: dict[str, Any] = json.loads(out_file.read_text(encoding="utf-8"))
        return result


def _files(args: argparse.Namespace, path: Path, kind: str, engines: list[str]) -> dict[str, Any]:
    types = [t for t in GGUF_TYPES if any(e.endswith(t) for e in engines)]
    files: dict[str, Any] = {"gguf": peer_export.gguf_files(path, kind, types)}
    if any(e.startswith("ort-") for e in engines):
        files["onnx"] = peer_export.onnx_files(path, kind)
    return files


def _rounds(args: argparse.Namespace, engines: list[str], base: dict[str, Any]) -> dict[str, list[Any]]:
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    for rnd in range(args.rounds):
        order = engines[rnd % len(engines) :] + engines[: rnd % len(engines)]
        for engine in order:
            load = os.getloadavg()[0]
            res = run_engine({**base, "engine": engine}, args.wait_policy)
            res["load_avg_1min"] = round(load, 2)
            runs[engine].append(res)
            shown = res.get("seconds", res.get("error"))
            print(f"[peers] {base['task']} round {rnd} {engine}: {shown}", file=sys.stderr, flush=True)
    return runs


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def summarise(
    runs: list[dict[str, Any]], units: float, gflop: float, peaks: dict[str, float]
) -> dict[str, Any]:
    """Rates per round (units per second), their median and spread, per core, MFU, peak RSS."""
    good = [r for r in runs if "seconds" in r]
    if not good:
        return {"error": runs[-1].get("error") if runs else "not run"}
    rates = [units / r["seconds"] for r in good]
    median_s = statistics.median(r["seconds"] for r in good)
    out: dict[str, Any] = {
        "rate": _spread(rates),
        "rounds_ok": len(good),
        "peak_rss_mib": _spread([r["peak_rss_mib"] for r in good]),
        "load_seconds": _spread([r["load_seconds"] for r in good]),
        "load_avg_1min": [r["load_avg_1min"] for r in runs],
    }
    warm_ups = [r["warm_up_seconds"] for r in good if r.get("warm_up_seconds") is not None]
    if warm_ups:  # finesift engines: the one-time compile their warm_up() paid
        out["warm_up_seconds"] = _spread(warm_ups)
    for name, peak in peaks.items():
        out[f"mfu_of_{name}"] = round(gflop / median_s / peak, 4) if peak else None
    return out


def bench(args: argparse.Namespace, task: str, path: Path, peaks: dict[str, float]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    engines = [e for e in (args.embed_engines if task == "embed" else args.rerank_engines).split(",") if e]
    tok = AutoTokenizer.from_pretrained(str(path))
    shape = models.model_shape(path)
    base: dict[str, Any] = {"task": task, "model": str(path), "threads": args.threads}
    base.update(max_length=args.max_length, wait_policy=args.wait_policy)
    base["files"] = _files(args, path, "embedding" if task == "embed" else "reranker", engines)
    if task == "embed":
        texts = workload.embedding_texts(args.shared / "data", args.texts)
        ids = tok(texts)["input_ids"]
        base.update(items=texts, embed_ids=ids)
        units, lengths = float(sum(map(len, ids))), [len(i) for i in ids]
    else:
        jobs = workload.rerank_jobs(args.shared / "data", args.queries, args.docs)
        ids = peer_fidelity.prompt_ids(tok, jobs, args.max_length)
        base.update(items=jobs, pair_ids=ids, yes_no=peer_fidelity.yes_no(tok))
        units, lengths = float(len(ids)), [len(i) for i in ids]
    gflop = sum(flops.sequence_flops(shape, n) for n in lengths) / 1e9
    runs = _rounds(args, engines, base)
    tokens = sum(lengths)
    summary = {e: summarise(r, units, gflop, peaks) for e, r in runs.items()}
    for s in summary.values():
        if "rate" in s:
            s["tokens_per_s_per_core"] = round(tokens / units * s["rate"]["median"] / args.threads, 1)
    return {
        "unit": "tokens/s" if task == "embed" else "pairs/s",
        "workload": {
            "inputs": len(lengths),
            "tokens": tokens,
            "max_tokens": max(lengths),
            "gflop": round(gflop, 1),
        },
        "engines": summary,
        "fidelity": peer_fidelity.fidelity(task, runs, TRUTH),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.shared = args.shared.resolve()
    emb, rer = models.ensure_models(
        args.shared,
        args.models_dir,
        embedding_config=args.embedding_config,
        reranker_config=args.reranker_config,
        init="hf",
    )
    shape = models.model_shape(emb)
    ceiling = bench_run.run_worker(
        {"task": "ceiling", "hidden": shape["hidden"], "intermediate": shape["intermediate"]}
        | {"tokens": 2048, "threads": args.threads}
    )
    peak = peer_fidelity.nominal_peak(args.threads)
    peaks = {"measured_bf16_matmul": ceiling.get("bf16_gflops", 0.0), "nominal_bf16_peak": peak["gflops"]}
    report: dict[str, Any] = {
        "command": "python benchmarks/cpu_peers.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {**bench_run.machine(), **peer_fidelity.cpu_details()},
        "threads": args.threads,
        "wait_policy": args.wait_policy,
        "load_avg_start": bench_run.load_average(),
        "shape": shape,
        "init": "hf",
        "ceiling_gflops": {"measured": ceiling, "nominal": peak},
    }
    for task in args.task:
        report[task] = bench(args, task, emb if task == "embed" else rer, peaks)
    report["load_avg_end"] = bench_run.load_average()
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
