"""Throughput of `finesift train reranker` (examples/s, peak memory) on a random Qwen3 reranker.

    python benchmarks/train_reranker.py --shape 0.6b --method lora --steps 12 --out result.json

A random-weight model of the chosen shape (``tiny``, or the true Qwen3-Reranker-0.6B one) with the real
tokenizer is trained on synthetic pairs (documents of ``--doc-words`` words, ``--negatives`` each) for
``--steps`` optimizer steps through :func:`finesift.train.reranker.train_reranker`. Examples/s is the
steady state: from the end of step 2 to the end of the last step (loading, tokenizing and saving are
excluded). Peak memory: the GPU's max allocated on CUDA, else the process's max RSS. One method per
process, so each peak is its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SHAPE_06B = {
    "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
}  # fmt: skip
WORDS = [
    "index",
    "cache",
    "query",
    "latency",
    "replica",
    "shard",
    "vacation",
    "expense",
    "policy",
    "server",
    "retry",
    "backoff",
    "token",
    "budget",
    "tenant",
    "badge",
    "printer",
    "deploy",
    "container",
    "registry",
    "network",
    "password",
    "rotation",
    "invoice",
    "refund",
]


def write_pairs(path: Path, n: int, doc_words: int, negatives: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(doc_words)) for _ in range(n + negatives)]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            query = " ".join(rng.sample(docs[i].split(), 6))
            negs = [docs[(i + 1 + k) % len(docs)] for k in range(negatives)]
            fh.write(json.dumps({"query": query, "positive": docs[i], "negatives": negs}) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=["tiny", "0.6b"], default="tiny")
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--doc-words", type=int, default=200)
    p.add_argument("--negatives", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-rr-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    import torch

    from finesift.testing.models import build_model, qwen3_config
    from finesift.train.reranker import RerankerTrainConfig, train_reranker

    shape = SHAPE_06B if args.shape == "0.6b" else None
    started = time.monotonic()
    model = build_model(work / "model", "reranker", config=qwen3_config("reranker", shape), spread=False)
    built_s = time.monotonic() - started
    n = args.batch_size * args.steps // (1 + args.negatives) + 1
    write_pairs(work / "pairs.jsonl", n, args.doc_words, args.negatives)
    ends: list[float] = []
    config = RerankerTrainConfig(
        model=str(model), out=work / "out", batch_size=args.batch_size, max_steps=args.steps,
        negatives=args.negatives, lora=args.method == "lora", device=args.device,
        precision=args.precision, gradient_checkpointing=args.gradient_checkpointing,
    )  # fmt: skip
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    began = time.monotonic()
    result = train_reranker(
        work / "pairs.jsonl", config, on_step=lambda step, loss: ends.append(time.monotonic())
    )
    total_s = round(time.monotonic() - began, 3)
    steady = (len(ends) - 2) * args.batch_size / (ends[-1] - ends[1]) if len(ends) > 2 else None
    cuda = result.device.startswith("cuda")
    record = {
        "benchmark": "train_reranker", "date": time.strftime("%Y-%m-%d"), "shape": args.shape,
        "method": args.method, "steps": result.steps, "batch_size": args.batch_size,
        "doc_words": args.doc_words, "negatives": args.negatives, "device": result.device,
        "device_name": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "precision": result.precision, "gradient_checkpointing": args.gradient_checkpointing,
        "examples_per_s": round(steady, 2) if steady else None,
        "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20) if cuda
        else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "loss_start": result.loss_start, "loss_end": result.loss_end, "build_model_s": round(built_s, 1),
        "total_s": total_s, "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
    }  # fmt: skip
    text = json.dumps(record)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
