"""Peak resident memory of `finesift train embedding` (default MiniLM run), with and without checkpointing.

    nice python benchmarks/train_memory.py ../shared/data/cmrc2018 --split trial --passages 96 --steps 2

Pairs whose positive is among the first ``--passages`` corpus documents of the split (sorted by id)
are written to a JSONL file, so the corpus mined for hard negatives is that subset. Each mode runs in
its own process (peak RSS is that mode's alone): ``load+mine`` loads the model and mines hard
negatives only, ``train`` and ``train+gc`` run ``--steps`` optimizer steps without saving. One JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def subset(beir: Path, split: str, passages: int, out: Path) -> int:
    """Write the pairs of ``split`` whose positive is in the first ``passages`` documents; their count."""
    corpus = {d["_id"]: d["text"] for d in map(json.loads, (beir / "corpus.jsonl").open(encoding="utf-8"))}
    queries = {d["_id"]: d["text"] for d in map(json.loads, (beir / "queries.jsonl").open(encoding="utf-8"))}
    rows = list(csv.reader((beir / "qrels" / f"{split}.tsv").open(encoding="utf-8"), delimiter="\t"))[1:]
    keep = set(sorted({r[1] for r in rows})[:passages])
    pairs = [(queries[q], corpus[d]) for q, d, s in rows if d in keep and int(s) > 0 and queries[q].strip()]
    out.write_text(
        "".join(json.dumps({"query": q, "positive": p}, ensure_ascii=False) + "\n" for q, p in pairs)
    )
    return len(pairs)


def one(data: Path, mode: str, steps: int) -> dict[str, object]:
    """Run ``mode`` in this process and report its peak RSS."""
    from finesift.settings import HubSettings
    from finesift.train.data import load_pairs
    from finesift.train.embedding import EmbeddingTrainConfig, train_embedding
    from finesift.train.encoder import open_encoder
    from finesift.train.negatives import negatives_for

    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        if mode == "load+mine":
            encoder = open_encoder("all-MiniLM-L6-v2", device="cpu", max_length=512, instruction=None,
                                   hub=HubSettings())  # fmt: skip
            negatives_for(load_pairs(data), encoder, 1, Path(out))
        else:
            config = EmbeddingTrainConfig(
                model="all-MiniLM-L6-v2", out=Path(out) / "run", max_steps=steps, save=False,
                progress=False, gradient_checkpointing=mode == "train+gc",
            )  # fmt: skip
            train_embedding(data, config)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "peak_rss_mb": round(peak), "seconds": round(time.perf_counter() - began, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("beir", type=Path)
    parser.add_argument("--split", default="trial")
    parser.add_argument("--passages", type=int, default=96)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--pairs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(one(args.pairs, args.mode, args.steps)))
        return
    with tempfile.TemporaryDirectory() as work:
        pairs = Path(work) / "pairs.jsonl"
        n = subset(args.beir, args.split, args.passages, pairs)
        runs = []
        for mode in ("load+mine", "train", "train+gc"):
            cmd = [sys.executable, __file__, str(args.beir), "--mode", mode, "--pairs", str(pairs),
                   "--steps", str(args.steps)]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    record = {"benchmark": "train_memory", "date": time.strftime("%Y-%m-%d"), "pairs": n,
              "passages": args.passages, "batch_size": 16, "steps": args.steps, "runs": runs}  # fmt: skip
    print(json.dumps(record))


if __name__ == "__main__":
    main()
