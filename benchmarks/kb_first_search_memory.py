"""Resident memory a process adds on its first BM25/hybrid search of a KB holding one large upload.

Issue 22 (item 9) measured +224 MB after a 19 M-character upload: the client-side BM25 index built
from every chunk on the first lexical search. ``build`` indexes 19 M characters of random
words (fake models) into ``DIR``; ``search`` opens the KB in a fresh process, warms it with a dense
search (jieba already loaded, as after an upload) and prints JSON: the RSS the first hybrid search adds.

    PYTHONPATH=src python benchmarks/kb_first_search_memory.py DIR build
    PYTHONPATH=src python benchmarks/kb_first_search_memory.py DIR search
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

CHARS = 19_000_000
PER_FILE = 1_500_000


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build(root: Path, settings: object) -> None:
    from finesift.kb.knowledge_base import open_or_create

    docs = root / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    words = [f"w{i}" for i in range(20000)] + ["数据库", "索引", "查询", "优化", "缓存"]
    for f in range(CHARS // PER_FILE):
        text = " ".join(rng.choice(words) for _ in range(PER_FILE // 6))
        (docs / f"d{f}.md").write_text(text, encoding="utf-8")
    start = time.perf_counter()
    with open_or_create("m", settings=settings) as kb:  # type: ignore[arg-type]
        kb.add([docs])
        kb.optimize()
    print(json.dumps({"build_s": round(time.perf_counter() - start, 1)}))


def search(settings: object) -> None:
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.lexical import tokenize
    from finesift.retrieval.pipeline import SearchOptions

    tokenize("数据库 优化")  # jieba's dictionary: loaded by any upload before the search
    kb = KnowledgeBase.open("m", settings=settings)  # type: ignore[arg-type]
    kb.search("warm up", SearchOptions(mode="dense", rerank=False))
    before, start = rss_mb(), time.perf_counter()
    kb.search("数据库 优化", SearchOptions(mode="hybrid", rerank=False))
    out = {
        "chunks": kb.snapshot().count_chunks(),
        "first_hybrid_s": round(time.perf_counter() - start, 2),
        "rss_before_mb": round(before),
        "rss_added_by_first_hybrid_mb": round(rss_mb() - before),
    }
    print(json.dumps(out))


def main() -> None:
    from finesift.settings import Settings

    root, phase = Path(sys.argv[1]), sys.argv[2]
    settings = Settings(home=root / "home", embedding={"model": "fake"}, reranker={"model": "none"})
    if phase == "build":
        build(root, settings)
    else:
        search(settings)


if __name__ == "__main__":
    main()
