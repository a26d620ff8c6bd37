"""Indexing throughput: plain ``index`` (one process) against ``--engine ray`` on a local Ray runtime.

Writes ``--files`` Markdown files (about 2.5 KB each, several chunks), indexes them into a fresh KB
with :meth:`KnowledgeBase.add`, then into another with :func:`add_with_ray` on ``ray.init(num_cpus=N)``
(started once, its start-up timed apart), and checks both KBs hold the same chunks. ``--model`` is
``fake`` (isolates the pipeline), ``tiny`` (the random-weight Qwen3 of finesift.testing.models, built
here) or a model directory.

Prints one JSON object. Example:
``PYTHONPATH=src python benchmarks/ray_ingest.py --files 300 --cpus 2``
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray

from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.kb.ray_ingest import add_with_ray
from finesift.settings import Settings

WORDS = [
    "index",
    "chunk",
    "embed",
    "commit",
    "search",
    "vector",
    "store",
    "batch",
    "actor",
    "task",
    "cluster",
    "driver",
]


def write_corpus(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    for i in range(files):
        lines = [f"# Note {i}"] + [
            " ".join(WORDS[(i * 7 + j * 3 + k) % len(WORDS)] for k in range(12)) + f" ({i}.{j})."
            for j in range(30)
        ]
        (root / f"note{i:05d}.md").write_text("\n\n".join(lines), encoding="utf-8")


def timed(label: str, run: Any) -> dict[str, Any]:
    started = time.perf_counter()
    report = run()
    seconds = time.perf_counter() - started
    return {"engine": label, "seconds": round(seconds, 2), **report.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--model", default="fake")
    parser.add_argument("--batch-docs", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "docs"
        write_corpus(corpus, args.files)
        if args.model == "tiny":
            from finesift.testing.models import build_model

            args.model = str(build_model(Path(tmp) / "tiny", "embedding"))
        settings = Settings(
            home=Path(tmp) / "home",
            embedding={"model": args.model, "device": "cpu"},
            reranker={"model": "none"},
            ray={"batch_docs": args.batch_docs},
        )
        plain = open_or_create("plain", settings=settings)
        runs = [timed("plain", lambda: plain.add([corpus]))]
        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        ours = open_or_create("viaray", settings=settings)
        runs.append(timed("ray", lambda: add_with_ray(ours, [corpus])))
        runs.append(timed("ray, unchanged re-run", lambda: add_with_ray(ours, [corpus])))
        ray.shutdown()
        same = _chunks(ours) == _chunks(plain)
    for run in runs:
        run["docs_per_s"] = round(args.files / run["seconds"], 1)
    print(json.dumps({
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.machine(),
        "cpus_for_ray": args.cpus, "files": args.files, "model": Path(args.model).name,
        "batch_docs": args.batch_docs,
        "ray_version": ray.__version__, "ray_start_s": round(ray_start, 2), "same_chunks": same, "runs": runs,
    }, indent=1))  # fmt: skip


def _chunks(kb: KnowledgeBase) -> list[tuple[str, int, str]]:
    snapshot = kb.snapshot()
    return sorted(
        (c.doc_id, c.index, c.text) for d in snapshot.documents() for c in snapshot.chunks(d.doc_id)
    )


if __name__ == "__main__":
    main()
