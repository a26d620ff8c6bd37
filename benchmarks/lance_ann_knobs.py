"""LanceDB's ANN recall/latency knobs: recall@10 against exact search and warm p50 per setting.

Builds one KB per index type (``kb.ann_index``: IVF_HNSW_SQ, IVF_PQ) from ``kb_growth.py``'s corpus
(fake 1024-d unit vectors around ``--topics`` centres, exact top 10 of 50 queries tracked while the rows
are made), compacts it (which trains the index), then searches the 50 queries in-process under each
combination of ``kb.ann_nprobes``, ``kb.ann_refine_factor`` and (HNSW) ``kb.ann_ef``.

    python benchmarks/lance_ann_knobs.py --chunks 100000 --out benchmarks/results/lance-ann-knobs.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import kb_growth as g


def build(home: Path, index: str, chunks: int, topics: int) -> tuple[g.Corpus, dict[str, float]]:
    corpus = g.Corpus(topics=topics)
    kb, costs = g.build_kb(home, chunks, corpus, {"ann_index": index})
    kb.close()
    return corpus, costs


def measure(home: Path, corpus: g.Corpus, knobs: dict[str, Any]) -> dict[str, Any]:
    """Recall@10 and warm latency of dense search under ``knobs`` (kb.ann_* settings)."""
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.settings import Settings

    settings = Settings(home=home, embedding={"model": f"fake:{g.DIM}"}, kb=knobs)
    with KnowledgeBase.open("bench", settings=settings) as kb:
        snap = kb.snapshot()
        snap.search(corpus.queries[0], k=10)  # warm the index files
        found, times = 0, []
        for q, ids in zip(corpus.queries, corpus.top_ids, strict=True):
            t0 = time.perf_counter()
            hits = snap.search(q, k=10)
            times.append((time.perf_counter() - t0) * 1000)
            found += len({h.chunk.chunk_id for h in hits} & set(ids))
    p50, p99 = (round(float(np.percentile(times, q)), 1) for q in (50, 99))
    recall = round(found / (10 * len(corpus.queries)), 3)
    return {**knobs, "recall_at_10": recall, "p50_ms": p50, "p99_ms": p99}


def grid(index: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    nprobes = [int(x) for x in args.nprobes.split(",")]
    refine = [int(x) for x in args.refine.split(",")]
    efs = [int(x) for x in args.ef.split(",")] if index == "IVF_HNSW_SQ" else [64]
    return [
        {"ann_index": index, "ann_nprobes": n, "ann_refine_factor": r, "ann_ef": e}
        for n, r, e in itertools.product(nprobes, refine, efs)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--indexes", default="IVF_HNSW_SQ,IVF_PQ")
    parser.add_argument("--nprobes", default="20,50,100")
    parser.add_argument("--refine", default="0,5,20")
    parser.add_argument("--ef", default="64,200")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="finesift-ann-knobs-"))
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "chunks": args.chunks,
        "topics": args.topics, "dimension": g.DIM, "command": " ".join(["python", *sys.argv]),
        "versions": g.store_versions("lancedb"), "indexes": [],
    }  # fmt: skip
    try:
        for index in args.indexes.split(","):
            home = root / index
            corpus, costs = build(home, index, args.chunks, args.topics)
            rows = [measure(home, corpus, knobs) for knobs in grid(index, args)]
            result["indexes"].append({"ann_index": index, **costs, "settings": rows})
            print(json.dumps(result["indexes"][-1]), file=sys.stderr, flush=True)
            shutil.rmtree(home, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    g.emit(result, args.out)


if __name__ == "__main__":
    main()
