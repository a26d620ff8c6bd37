"""Training throughput of `finesift train embedding` on the true Qwen3-Embedding-0.6B shape, LoRA and full.

    python benchmarks/train_throughput.py                       # CPU, short default sizes
    python benchmarks/train_throughput.py --device cuda --batch-size 32 --max-length 512 --steps 5
    python benchmarks/train_throughput.py --modes lora --layers 2 --batch-size 16 --processes 1,2 \
        --mini-batch-sizes 0,4                                  # data parallel (torchrun, gloo) x GradCache

Random weights in the exact 0.6B shape are built from the official ``config.json`` and tokenizer
(``<shared>/models/qwen3-0.6b/Qwen3-Embedding-0.6B``, no weights needed), saved once under ``--work``.
Each mode (LoRA, full) runs in its own process, so peak RSS is that mode's alone. The pairs are
synthetic: queries of about 24 tokens, documents long enough to be cut at ``--max-length``; each pair
carries one hard negative (so no mining). Step 1 is a warm-up; examples/s is over the later steps.
``--processes 1,2`` runs each mode under ``torchrun --nproc-per-node N`` (``--batch-size`` is the global
batch); ``--mini-batch-sizes 0,4`` adds GradCache runs (0: off); ``--layers N`` keeps only the first N
decoder layers of the shape (the vocabulary and width stay), for a CPU that cannot step the full depth.
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
    p.add_argument("--processes", default="1", help="comma-separated process counts (torchrun)")
    p.add_argument("--mini-batch-sizes", default="0", help="comma-separated GradCache sizes (0: off)")
    p.add_argument("--mini-batch-size", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--layers", type=int, default=0, help="keep the first N decoder layers (0: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads a process (0: CPUs / processes)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def model_path(args: argparse.Namespace) -> Path:
    suffix = f"-{args.layers}-layers" if args.layers else ""
    return args.work / f"qwen3-embedding-0.6b-random{suffix}"


def build_model(config_dir: Path, target: Path, layers: int = 0) -> Path:
    """Random weights (transformers' own init) in the shape of ``config_dir``, bf16 on disk."""
    if (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoConfig, AutoModel

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(config_dir, tmp, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "README.md"))
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(str(config_dir))
    if layers:
        config.num_hidden_layers = layers
        config.layer_types = config.layer_types[:layers] if getattr(config, "layer_types", None) else None
    model = AutoModel.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(tmp), safe_serialization=True)
    if not layers:
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

    model = build_model(args.config_dir, model_path(args), args.layers)
    steps = args.steps + 1
    data = synthetic_data(args.batch_size * steps, args.max_length)
    config = EmbeddingTrainConfig(
        model=str(model),
        out=args.work / f"out-{args.child}-{os.environ.get('TORCHELASTIC_RUN_ID', os.getpid())}",
        batch_size=args.batch_size,
        mini_batch_size=args.mini_batch_size or None,
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
    if os.environ.get("RANK", "0") != "0":
        return
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
    build_model(args.config_dir, model_path(args), args.layers)
    runs = []
    for mode in args.modes.split(","):
        for processes in (int(n) for n in args.processes.split(",")):
            for mini in (int(m) for m in args.mini_batch_sizes.split(",")):
                runs.append(run_child(args, mode, processes, mini))
    report = {
        "benchmark": "train-throughput",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "shape": f"random weights from {args.config_dir.name}/config.json"
        + (f", first {args.layers} layers" if args.layers else ""),
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


def run_child(args: argparse.Namespace, mode: str, processes: int, mini: int) -> dict[str, Any]:
    """One mode in fresh processes: plain, or under torchrun with ``processes`` ranks (gloo on CPU)."""
    launch = [sys.executable]
    if processes > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    cmd = [*launch, __file__, "--child", mode, "--mini-batch-size", str(mini), *_forward(args)]
    threads = args.threads or max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        return {"mode": mode, "processes": processes, "mini_batch_size": mini, "error": proc.stderr[-3000:]}
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    wall = round(time.perf_counter() - began, 1)
    return {**found, "processes": processes, "mini_batch_size": mini, "wall_s": wall}


def _forward(args: argparse.Namespace) -> list[str]:
    out = ["--config-dir", str(args.config_dir), "--work", str(args.work), "--device", args.device]
    out += ["--precision", args.precision, "--batch-size", str(args.batch_size)]
    out += ["--max-length", str(args.max_length), "--steps", str(args.steps), "--layers", str(args.layers)]
    return out + (["--gradient-checkpointing"] if args.gradient_checkpointing else [])


if __name__ == "__main__":
    main()
