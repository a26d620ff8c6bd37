"""Fresh-process first BM25 search on the server stores (pgvector, Milvus Lite) as a KB grows. Prints JSON.

The store is filled directly through the store API with synthetic chunks (random unit vectors of
dimension 1024, as the fake embedder gives; text: 60 words drawn by Zipf's law from 5,000 made-up
words plus 5 of 25 English, code and Chinese words, so each of those is in ~20% of chunks), grown in steps
(``--sizes 10000,40000``). After each step a fresh Python process opens the store and runs one
lexical search; it reports the open time, the first search time and its peak RSS (for Milvus Lite,
whose engine runs inside the searching process, that includes the engine). Vector indexes are
flat/none: only BM25 is measured. Run it with ``PYTHONPATH`` pointing at the finesift to measure::

    PYTHONPATH=src python benchmarks/server_stores_bm25.py --stores pgvector,milvus --sizes 10000,40000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from finesift.lexical import tokenize
from finesift.store.base import DocumentWrite
from finesift.store.registry import open_store
from finesift.types import Chunk, DocumentInfo

DIM = 1024
CHUNKS_PER_DOC = 10
WORDS = [
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
    "vector",
    "search",
    "ranking",
    "tokenizer",
    "snapshot",
    "commit",
    "rollback",
    "数据库",
    "索引",
    "查询",
    "优化",
    "缓存",
    "连接池",
    "事务",
]
QUERY = "数据 retryPolicy shard latency"
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
VOCAB = ["".join(p) for p in np.random.default_rng(7).choice(_SYLLABLES, (5000, 3))]
ZIPF = 1.0 / np.arange(1, len(VOCAB) + 1)
ZIPF /= ZIPF.sum()


def _doc(i: int, rng: np.random.Generator) -> DocumentWrite:
    doc_id = f"doc{i:07d}"
    texts = [" ".join([*rng.choice(VOCAB, 60, p=ZIPF), *rng.choice(WORDS, 5)]) for j in range(CHUNKS_PER_DOC)]
    chunks = [Chunk(doc_id, j, t, 0, len(t), None, f"/kb/{doc_id}.md", "md") for j, t in enumerate(texts)]
    vectors = rng.standard_normal((len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    info = DocumentInfo(doc_id, f"/kb/{doc_id}.md", "md", f"h{i}", "p", len(chunks), 100)
    return DocumentWrite(info, chunks, vectors, [tokenize(t) for t in texts])


def grow(uri: str, path: Path, start: int, stop: int, create: bool) -> float:
    """Add documents ``start..stop`` (10 chunks each); the seconds it took."""
    store = open_store(uri, path, dimension=DIM, create=create)
    rng = np.random.default_rng(start)
    began = time.perf_counter()
    for first in range(start, stop, 100):
        store.commit(upserts=[_doc(i, rng) for i in range(first, min(stop, first + 100))])
    store.close()
    return time.perf_counter() - began


def search_once(uri: str, path: Path) -> dict[str, float]:
    """In this (fresh) process: open, one lexical search; times and peak RSS."""
    began = time.perf_counter()
    terms, other = tokenize(QUERY), tokenize(f"{VOCAB[3]} {VOCAB[900]} cache")  # loads jieba's dictionary
    tokenized = time.perf_counter()
    store = open_store(uri, path, dimension=DIM)
    snap = store.snapshot()
    opened = time.perf_counter()
    rss_open = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hits = snap.lexical_search(terms, k=10)
    searched = time.perf_counter()
    snap.lexical_search(other, k=10)
    warm = time.perf_counter() - searched
    repeats = []
    for query in [terms, other] * 5:
        began_one = time.perf_counter()
        snap.lexical_search(query, k=10)
        repeats.append(time.perf_counter() - began_one)
    return {
        "tokenize_s": round(tokenized - began, 3),
        "open_s": round(opened - tokenized, 3),
        "first_bm25_s": round(searched - opened, 3),
        "warm_bm25_s": round(warm, 4),
        "warm_bm25_p50_s": round(float(np.median(repeats)), 4),
        "peak_rss_mb_after_open": round(rss_open, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "hits": len(hits),
    }


def _fresh(*args: str) -> object:
    """Run this script with ``args`` in a new process (Milvus Lite lets one process hold a .db)."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", default="pgvector,milvus")
    parser.add_argument("--sizes", default="10000,40000", help="chunk counts to measure at")
    parser.add_argument("--search-only", nargs=2, metavar=("URI", "PATH"))
    parser.add_argument("--grow", nargs=4, metavar=("URI", "PATH", "START", "STOP"))
    args = parser.parse_args()
    if args.search_only:
        print(json.dumps(search_once(args.search_only[0], Path(args.search_only[1]))))
        return
    if args.grow:
        uri, path, start, stop = args.grow
        print(json.dumps(grow(uri, Path(path), int(start), int(stop), create=start == "0")))
        return
    from finesift.testing.services import postgres_server

    results = []
    root = Path(tempfile.mkdtemp(prefix="bm25-stores-"))
    with ExitStack() as stack:
        for name in args.stores.split(","):
            if name == "pgvector":
                (root / "pg").mkdir()
                base = stack.enter_context(postgres_server(root / "pg"))
                uri = base + ("&" if "?" in base else "?") + "index=none"
            else:
                uri = str(root / "milvus" / "kb.db") + "?index=flat"
            path, done = root / name / "store", 0
            for size in (int(s) for s in args.sizes.split(",")):
                build_s = _fresh(
                    "--grow", uri, str(path), str(done // CHUNKS_PER_DOC), str(size // CHUNKS_PER_DOC)
                )
                done = size
                searched = _fresh("--search-only", uri, str(path))
                row = {"store": name, "chunks": size, "grow_s": round(float(build_s), 1), **searched}
                results.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"dim": DIM, "query": QUERY, "results": results}, indent=1))


if __name__ == "__main__":
    main()
