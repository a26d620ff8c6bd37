"""Index ~10k chunks with the fake embedder; time re-indexing and dense, bm25, hybrid search. Prints JSON."""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from finesift.kb.knowledge_base import open_or_create
from finesift.retrieval.pipeline import SearchOptions
from finesift.settings import Settings

WORDS = [
    *["数据库", "索引", "查询", "优化", "缓存", "连接池", "事务", "分布式", "日志", "监控"],
    *[
        "database",
        "index",
        "query",
        "cache",
        "pool",
        "transaction",
        "replica",
        "shard",
        "latency",
        "getUserName",
        "retryPolicy",
    ],
]


def main(n_docs: int = 1000, sentences: int = 40) -> None:
    rng = random.Random(0)
    root = Path(tempfile.mkdtemp())
    docs = root / "docs"
    docs.mkdir()
    for i in range(n_docs):
        body = "".join(" ".join(rng.choices(WORDS, k=12)) + f" doc{i}s{j}。" for j in range(sentences))
        (docs / f"d{i:05d}.md").write_text(f"# Doc {i}\n\n{body}", encoding="utf-8")
    settings = Settings(
        home=root / "home",
        embedding={"model": "fake:256"},
        reranker={"model": "fake"},
        kb={"chunk_size": 128, "chunk_overlap": 16},
    )
    kb = open_or_create("bench", settings=settings)
    t0 = time.perf_counter()
    report = kb.add([docs])
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = kb.add([docs])
    reindex_s = time.perf_counter() - t0
    out = {
        "documents": n_docs,
        "chunks": kb.snapshot().count_chunks(),
        "index_s": round(index_s, 2),
        "reindex_unchanged_s": round(reindex_s, 2),
        "reindex_embedded": again.chunks_embedded,
        "first_report": report.summary(),
    }
    for mode in ("bm25", "dense", "hybrid"):
        opts = SearchOptions(mode=mode, rerank=False, top_k=10)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        kb.search("如何优化数据库 getUserName", opts)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(20):
            kb.search("数据库 连接池 latency", opts)
        out[f"{mode}_first_ms"] = round(first * 1000, 1)
        out[f"{mode}_ms"] = round((time.perf_counter() - t0) / 20 * 1000, 1)
    t0 = time.perf_counter()
    kb.search("数据库 连接池 latency", SearchOptions(top_k=10))
    out["hybrid_rerank20_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    json.dump(out, sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
