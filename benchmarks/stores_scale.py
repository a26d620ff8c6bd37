"""Server stores at scale: migrate a ~10k-chunk KB LanceDB → Milvus (milvus-lite server) → pgvector,
timing each copy and the dense/hybrid query latency on each store, then parallel ingestion through
two loopback OpenAI-compatible servers that take ``--latency`` seconds per request (a stand-in for
GPU servers). Prints JSON.

    PYTHONPATH=src python benchmarks/stores_scale.py [n_docs] [latency_s]
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from finesift.embedding.fake import FakeEmbedder
from finesift.kb.knowledge_base import KnowledgeBase, open_or_create
from finesift.kb.migrate import migrate
from finesift.retrieval.pipeline import SearchOptions
from finesift.settings import Settings
from finesift.testing.http import ServerState, protocol_server
from finesift.testing.services import milvus_server, postgres_server

WORDS = [
    "数据库",
    "索引",
    "查询",
    "优化",
    "缓存",
    "连接池",
    "事务",
    "database",
    "index",
    "query",
    "cache",
    "pool",
    "replica",
    "shard",
    "latency",
]
QUERIES = ["数据库 索引 优化", "cache latency", "连接池 事务", "replica shard query"]


class SlowFake(FakeEmbedder):
    """The fake model, taking ``delay`` seconds per request, as a GPU server would."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def embed(self, texts: Any) -> Any:
        time.sleep(self.delay)
        return super().embed(texts)


def corpus(root: Path, n_docs: int) -> Path:
    rng = random.Random(0)
    docs = root / "docs"
    docs.mkdir()
    for i in range(n_docs):
        body = "\n\n".join(" ".join(rng.choices(WORDS, k=60)) + f" doc{i}p{j}" for j in range(10))
        (docs / f"d{i:05d}.md").write_text(body, "utf-8")
    return docs


def query_ms(settings: Settings, mode: str) -> float:
    with KnowledgeBase.open("bench", settings=settings) as kb:
        kb.search(QUERIES[0], SearchOptions(top_k=10, mode=mode, rerank=False))  # warm (BM25 index)
        start = time.perf_counter()
        for q in QUERIES * 5:
            kb.search(q, SearchOptions(top_k=10, mode=mode, rerank=False))
    return round((time.perf_counter() - start) / (len(QUERIES) * 5) * 1000, 1)


def parallel_ingest(docs: Path, home: Path, latency: float) -> dict[str, float]:
    out = {}
    for workers, n_servers in ((1, 1), (4, 1), (8, 2)):
        state_a, state_b = ServerState(embedder=SlowFake(latency)), ServerState(embedder=SlowFake(latency))
        with protocol_server(state_a) as (a, _), protocol_server(state_b) as (b, _):
            urls = ",".join([a, b][:n_servers])
            embedding = {
                "model": "fake",
                "url": urls,
                "workers": workers,
                "backend": "openai",
                "batch_size": 32,
            }
            settings = Settings(home=home, embedding=embedding, kb={"commit_chunks": 64 * workers})
            start = time.perf_counter()
            name = f"par{workers}x{n_servers}"
            with open_or_create(name, settings=settings, choices={"reranker_model": "none"}) as kb:
                report = kb.add([docs])
            seconds = time.perf_counter() - start
            out[f"{workers} workers, {n_servers} server(s): chunks/s"] = round(
                report.chunks_embedded / seconds, 1
            )
    return out


def main(n_docs: int = 1000, latency: float = 0.05) -> None:
    root = Path(tempfile.mkdtemp(prefix="finesift-bench-"))
    root.chmod(0o755)
    docs = corpus(root, n_docs)
    settings = Settings(home=root / "home", embedding={"model": "fake"})
    result: dict[str, Any] = {}
    with open_or_create("bench", settings=settings, choices={"reranker_model": "none"}) as kb:
        report = kb.add([docs])
    result["chunks"] = report.chunks_embedded
    result["lancedb"] = {"dense_ms": query_ms(settings, "dense"), "hybrid_ms": query_ms(settings, "hybrid")}
    (root / "milvus").mkdir()
    with milvus_server(root / "milvus") as muri, postgres_server(root) as puri:
        for label, uri in (("milvus", muri), ("pgvector", puri), ("lancedb_again", "lancedb")):
            moved = migrate("bench", to=uri, settings=settings)
            result[label] = {"migrate_s": round(moved.seconds, 1), "dense_ms": query_ms(settings, "dense"),
                             "hybrid_ms": query_ms(settings, "hybrid")}  # fmt: skip
    result["parallel_ingest"] = parallel_ingest(docs, root / "home2", latency)
    result["latency_per_request_s"] = latency
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*(int(a) if i == 0 else float(a) for i, a in enumerate(sys.argv[1:])))
