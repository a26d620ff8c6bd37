"""Fresh-process ``finesift search`` timed over many rounds: KB sizes, modes and jieba variants alternating.

One CLI run is too noisy on a small VM (single-core speed moves by tens of percent), so this runs each
(KB, mode, variant) combination ``--rounds`` times in turn and reports median, range, CPU and peak RSS.
KBs come from ``--build`` (fake 1024-d vectors around 1,000 topics, as ``kb_growth.py --topics 1000``,
compacted with its ANN index) or from existing homes given as ``--kb LABEL=HOME``. Variants: ``copy``
(jieba's dictionary read from the SQLite copy, the default once it exists) and ``full`` (the cache
made unusable, so the query loads the whole dictionary, as before the copy existed).

    python benchmarks/kb_cli_series.py --build 4000,40000 --rounds 8 --out benchmarks/results/X.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import kb_growth as g

QUERY = "数据库 lve fxd xid"  # kb_growth's first query: a Chinese word and three corpus words
FORMAT = "%e %U %S %M"


def build(chunks: int, home: Path) -> None:
    """A KB of ``chunks`` chunks under ``home``, written and compacted as kb_growth.py does."""
    kb, _ = g.build_kb(home, chunks, g.Corpus(topics=1000), {"store": "lancedb"})
    kb.close()


def run_once(home: Path, mode: str, variant: str, cache: Path) -> dict[str, float]:
    env = {**os.environ, "FINESIFT_HOME": str(home), "FINESIFT_KB__STORE": "lancedb"}
    env["FINESIFT_CACHE_DIR"] = str(cache if variant == "copy" else cache / "unusable" / "x")
    cli = shutil.which("finesift") or "finesift"
    argv = ["/usr/bin/time", "-f", FORMAT, cli, "search", "--kb", "bench", "--mode", mode, "--no-rerank"]
    argv.append(QUERY)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    wall, user, system, rss_kb = done.stderr.strip().splitlines()[-1].split()
    return {"s": float(wall), "cpu_s": float(user) + float(system), "rss_mb": int(rss_kb) / 1024}


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    walls = [r["s"] for r in runs]
    return {
        "median_s": round(statistics.median(walls), 2), "min_s": min(walls), "max_s": max(walls),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2),
        "peak_rss_mb": round(max(r["rss_mb"] for r in runs)), "runs": walls,
    }  # fmt: skip


def prepare_cache(cache: Path) -> None:
    """Write jieba's dictionary copy into ``cache`` (what the first ``finesift index`` of Chinese does);
    ``cache/unusable`` is a file, so the ``full`` variant's cache directory cannot be created."""
    os.environ["FINESIFT_CACHE_DIR"] = str(cache)
    from finesift.lexical import cjk

    cjk.full()
    (cache / "unusable").write_text("a file, so that no cache directory can be made under it\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="", help="chunk counts of KBs to build, comma-separated")
    parser.add_argument("--kb", action="append", default=[], help="LABEL=HOME of an existing KB named bench")
    parser.add_argument("--modes", default="bm25,hybrid,dense")
    parser.add_argument("--variants", default="copy,full")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="finesift-cli-series-"))
    try:
        kbs = dict(item.split("=", 1) for item in args.kb)
        for chunks in filter(None, args.build.split(",")):
            kbs[chunks] = str(root / f"home-{chunks}")
            build(int(chunks), Path(kbs[chunks]))
        prepare_cache(root / "cache")
        combos = [(k, m, v) for k in kbs for m in args.modes.split(",") for v in args.variants.split(",")]
        runs: dict[tuple[str, str, str], list[dict[str, float]]] = {c: [] for c in combos}
        for _ in range(args.rounds):
            for kb, mode, variant in combos:
                runs[kb, mode, variant].append(run_once(Path(kbs[kb]), mode, variant, root / "cache"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "query": QUERY, "rounds": args.rounds,
        "load_average_1m_end": round(os.getloadavg()[0], 2), "command": " ".join(["python", *sys.argv]),
        "results": [{"kb": k, "mode": m, "variant": v, **summary(r)} for (k, m, v), r in runs.items()],
    }  # fmt: skip
    g.emit(result, args.out)


if __name__ == "__main__":
    main()
