"""Training throughput of `finesift train embedding` on the true Qwen3-Embedding-0.6B shape, LoRA and full.

    python benchmarks/train_throughput.py                       # CPU, short default sizes
    python benchmarks/train_throughput.py --device cuda --batch-size 32 --max-length 512 --steps 5

Random weights in the exact 0.6B shape are built from the official ``config.json`` and tokenizer
(``<shared>/models/qwen3-0.6b/Qwen3-Embedding-0.6B``, no weights needed), saved once under ``--work``.
Each mode (LoRA, full) runs in its own process, so peak RSS is that mode's alone. The pairs are
synthetic: queries of about 24 tokens, documents long enough to be cut at ``--max-length``; each pair
carries one hard negative (so no mining). Step 1 is a warm-up; examples/s is over the later steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
WORDS = [
    "retrieval",
    "passage",
    "model",
    "query",
    "index",
    "vector",
    "token",
    "layer",
    "weight",
    "batch",
    "corpus",
    "answer",
]


def shared_dir() -> Path:
    for candidate in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if (candidate / "models").is_dir():
            return candidate
    return ROOT.parent / "shared"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_config = shared_dir() / "models" / "qwen3-0.6b" / "Qwen3-Embedding-0.6B"
    p.add_argument("--config-dir", type=Path, default=default_config, help="config.json + tokenizer")
    p.add_argument("--work", type=Path, default=ROOT / ".bench" / "train-throughput")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train-throughput-cpu.json")
    p.add_argument("--modes", default="lora,full")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="auto")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build_model(config_dir: Path, target: Path) -> Path:
    """Random weights (transformers' own init) in the shape of ``config_dir``, bf16 on disk."""
    if (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoConfig, AutoModel

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(config_dir, tmp, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "README.md"))
    torch.manual_seed(0)
    model = AutoModel.from_config(AutoConfig.from_pretrained(str(config_dir)), dtype=torch.bfloat16)
    model.save_pretrained(str(tmp), safe_serialization=True)
    shutil.copy2(config_dir / "config.json", tmp / "config.json")
    os.replace(tmp, target)
    return target


def synthetic_data(n: int, max_length: int) -> Any:
    from finesift.train.data import TrainData, TrainPair, fingerprint

    def text(i: int, words: int) -> str:
        return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] + str((i + j) % 97) for j in range(words))

    pairs = tuple(
        TrainPair(text(i, 8), text(i + 1000, max_length), (text(i + 2000, max_length),)) for i in range(n)
    )
    corpus = tuple(t for p in pairs for t in (p.positive, *p.negatives))
    return TrainData(pairs, corpus, fingerprint(pairs, corpus), "synthetic")


def child(args: argparse.Namespace) -> None:
    from finesift.train.embedding import EmbeddingTrainConfig, train_embedding

    model = build_model(args.config_dir, args.work / "qwen3-embedding-0.6b-random")
    steps = args.steps + 1
    data = synthetic_data(args.batch_size * steps, args.max_length)
    config = EmbeddingTrainConfig(
        model=str(model),
        out=args.work / f"out-{args.child}-{os.getpid()}",
        batch_size=args.batch_size,
        max_steps=steps,
        lora=args.child == "lora",
        hard_negatives=1,
        max_length=args.max_length,
        device=args.device,
        precision=args.precision,
        gradient_checkpointing=args.gradient_checkpointing,
        progress=False,
        save=False,
    )
    result = train_embedding(data, config)
    shutil.rmtree(config.out, ignore_errors=True)
    timed = result.step_seconds[1:]
    examples = args.batch_size * len(timed)
    print(
        json.dumps(
            {
                "mode": args.child,
                **result.to_json(),
                "timed_steps": len(timed),
                "examples_per_s_after_warmup": round(examples / sum(timed), 3) if timed else None,
                "texts_per_example": 3,
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    build_model(args.config_dir, args.work / "qwen3-embedding-0.6b-random")
    runs = []
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, "--child", mode, *_forward(args)]
        began = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            runs.append({"mode": mode, "error": proc.stderr[-3000:]})
            continue
        runs.append(
            {
                **json.loads(proc.stdout.strip().splitlines()[-1]),
                "wall_s": round(time.perf_counter() - began, 1),
            }
        )
    report = {
        "benchmark": "train-throughput",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "shape": "Qwen3-Embedding-0.6B (random weights from the official config.json)",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("child",)}
        | {"config_dir": str(args.config_dir)},
        "runs": runs,
    }
    report["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in report["settings"].items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


def _forward(args: argparse.Namespace) -> list[str]:
    out = ["--config-dir", str(args.config_dir), "--work", str(args.work), "--device", args.device]
    out += ["--precision", args.precision, "--batch-size", str(args.batch_size)]
    out += ["--max-length", str(args.max_length), "--steps", str(args.steps)]
    return out + (["--gradient-checkpointing"] if args.gradient_checkpointing else [])


if __name__ == "__main__":
    main()
