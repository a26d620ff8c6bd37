"""Load on loopback: requests/s and p50/p99 latency of `finesift serve`, printed as JSON.

    python benchmarks/server_load.py --models fake --endpoint embeddings --concurrency 16 --requests 2000
    python benchmarks/server_load.py --models tiny --endpoint rerank --documents 10
    python benchmarks/server_load.py --embedding-model E --reranker-model R --device cuda --dtype auto \
        --endpoint embeddings,rerank --concurrency 1,16,64 --requests 500

Comma lists run every endpoint x concurrency against one server (one model load) and print a JSON list.

The server runs as a separate process (`python -m finesift serve`); the client is asyncio + httpx
with keep-alive connections, ``--concurrency`` requests in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def model_paths(kind: str, workdir: Path) -> tuple[str, str]:
    if kind == "fake":
        return "fake", "fake"
    from finesift.testing.models import build_model

    return str(build_model(workdir / "emb", "embedding")), str(build_model(workdir / "rr", "reranker"))


def start_server(
    embedding: str,
    reranker: str,
    port: int,
    device: str = "cpu",
    dtype: str = "float32",
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`finesift serve` in its own process; its output goes to ``log`` (or nowhere)."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    cmd = [
        sys.executable,
        "-m",
        "finesift",
        "serve",
        "--embedding-model",
        embedding,
        "--reranker-model",
        reranker,
        "--port",
        str(port),
        "--device",
        device,
        "--dtype",
        dtype,
    ]
    if log is None:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log, "ab") as sink:
        return subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


def body_for(args: argparse.Namespace, i: int) -> tuple[str, dict[str, object]]:
    if args.endpoint == "embeddings":
        texts = [f"request {i} text {j}: what is the capital of China and why" for j in range(args.texts)]
        return "/v1/embeddings", {"input": texts}
    docs = [f"document {j}: Beijing is the capital of China, request {i}" for j in range(args.documents)]
    return "/v1/rerank", {"query": "capital of China", "documents": docs}


async def run_load(url: str, args: argparse.Namespace) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(args.requests))
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for i in counter:
                path, body = body_for(args, i)
                began = time.perf_counter()
                response = await client.post(path, json=body)
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        path, body = body_for(args, -1)
        for _ in range(max(1, args.warmup // args.concurrency)):  # opens every connection before timing
            await asyncio.gather(*(client.post(path, json=body) for _ in range(args.concurrency)))
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "statuses": statuses,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", choices=["fake", "tiny"], default="fake")
    parser.add_argument("--embedding-model", help="a model directory (with --reranker-model: not --models)")
    parser.add_argument("--reranker-model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--endpoint", default="embeddings", help="embeddings, rerank, or both: a comma list")
    parser.add_argument("--concurrency", default="16", help="requests in flight: a number or comma list")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--texts", type=int, default=1, help="texts per embeddings request")
    parser.add_argument("--documents", type=int, default=10, help="documents per rerank request")
    parser.add_argument("--warmup", type=int, default=64, help="requests before timing starts")
    parser.add_argument("--ready-timeout", type=float, default=120)
    parser.add_argument("--server-log", type=Path, help="append the server's output here")
    args = parser.parse_args()
    if bool(args.embedding_model) != bool(args.reranker_model):
        parser.error("--embedding-model and --reranker-model go together")
    for endpoint in args.endpoint.split(","):
        if endpoint not in ("embeddings", "rerank"):
            parser.error(f"unknown endpoint {endpoint!r}; choose embeddings or rerank")
    return args


def main() -> None:
    args = parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    runs = [
        (endpoint, int(concurrency))
        for endpoint in args.endpoint.split(",")
        for concurrency in args.concurrency.split(",")
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        embedding, reranker = (
            (args.embedding_model, args.reranker_model)
            if args.embedding_model
            else model_paths(args.models, Path(tmp))
        )
        began = time.perf_counter()
        server = start_server(embedding, reranker, port, args.device, args.dtype, args.server_log)
        try:
            wait_ready(url, args.ready_timeout)
            ready_s = round(time.perf_counter() - began, 1)
            for endpoint, concurrency in runs:
                one = argparse.Namespace(**{**vars(args), "endpoint": endpoint, "concurrency": concurrency})
                result = asyncio.run(run_load(url, one))
                results.append(
                    {
                        "models": "paths" if args.embedding_model else args.models,
                        "device": args.device,
                        "endpoint": endpoint,
                        "concurrency": concurrency,
                        "texts": args.texts if endpoint == "embeddings" else args.documents,
                        "cpus": os.cpu_count(),
                        "server_ready_s": ready_s,
                        **result,
                    }
                )
        finally:
            server.terminate()
            server.wait(30)
    print(json.dumps(results[0] if len(results) == 1 else results))


if __name__ == "__main__":
    main()
