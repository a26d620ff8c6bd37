"""Load on ``POST /v1/kbs/{kb}/search``: start ``finesift serve`` (fake models), upload a corpus, search.

Prints one JSON line: requests/s and latency percentiles. Example:
``PYTHONPATH=src python benchmarks/kb_search_load.py --documents 500 --concurrency 8 --requests 500``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import tempfile
import time

import httpx

WORDS = ["database", "index", "cache", "query", "latency", "shard", "replica", "vector", "token", "chunk",
         "rerank", "embedding", "数据库", "索引", "缓存", "查询", "延迟", "分片", "副本", "向量"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def document(rng: random.Random) -> bytes:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160))).encode()


def ready(client: httpx.Client) -> bool:
    try:
        return client.get("/ready").status_code == 200
    except httpx.TransportError:
        return False


def prepare(url: str, args: argparse.Namespace) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        deadline = time.monotonic() + 120
        while not ready(client):
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not become ready")
            time.sleep(0.2)
        client.post("/v1/kbs", json={"name": "load"}).raise_for_status()
        rng = random.Random(0)
        for start in range(0, args.documents, 100):
            files = [
                ("files", (f"d{i}.md", document(rng))) for i in range(start, min(start + 100, args.documents))
            ]
            client.post("/v1/kbs/load/documents", files=files).raise_for_status()


async def run(url: str, args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(1)
    queries = [" ".join(rng.sample(WORDS, 3)) for _ in range(args.requests + args.warmup)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    body = {"top_k": 5, "mode": args.mode, "rerank": not args.no_rerank}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for q in queries[: args.warmup]:
            await client.post("/v1/kbs/load/search", json={**body, "query": q})
        todo = iter(queries[args.warmup :])

        async def worker() -> None:
            for q in todo:
                began = time.perf_counter()
                response = await client.post("/v1/kbs/load/search", json={**body, "query": q})
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)

    return {"documents": args.documents, "mode": args.mode, "rerank": not args.no_rerank,
            "concurrency": args.concurrency, "requests": len(latencies),
            "requests_per_s": round(len(latencies) / elapsed, 1), "p50_ms": pct(0.5), "p90_ms": pct(0.9),
            "p99_ms": pct(0.99), "statuses": statuses}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid")
    parser.add_argument("--no-rerank", action="store_true")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        command = [sys.executable, "-m", "finesift", "serve", "--embedding-model", "fake",
                   "--reranker-model", "fake", "--home", home, "--port", str(port)]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            prepare(url, args)
            print(json.dumps(asyncio.run(run(url, args))))
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
