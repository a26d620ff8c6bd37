"""Store growth and search latency over HTTP uploads, with and without background compaction.

Runs the server in-process (uvicorn on 127.0.0.1, fake models), uploads ``--uploads`` one-file
requests into a fresh KB, then times ``--searches`` sequential searches. Three runs:

- ``never``: compaction off (``kb.optimize_versions`` out of reach), as every HTTP write was before;
  then one ``optimize()`` by hand and the searches again;
- ``default``: the defaults (compact after 200 versions, keep old versions 600 s for readers);
- ``keep_1ms``: the defaults but old versions pruned at once.

Prints one JSON object. Example: ``PYTHONPATH=src python benchmarks/kb_compaction.py --uploads 200``
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from finesift.kb.knowledge_base import KnowledgeBase
from finesift.server.app import create_app
from finesift.settings import Settings

QUERIES = ["compaction store versions", "search latency", "note number 7", "upload files", "fragment count"]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _store(home: Path) -> dict[str, int]:
    kb = KnowledgeBase.open("bench", settings=Settings(home=home))
    try:
        table = kb.store._table("chunks")  # type: ignore[attr-defined]
        table.checkout(kb.store._read_pointer().chunks)  # type: ignore[attr-defined]
        fragments = table.stats()["fragment_stats"]["num_fragments"]
        counts = {"versions": len(table.list_versions()), "fragments": fragments}
    finally:
        kb.close()
    counts["files"] = sum(len(names) for _, _, names in os.walk(home / "kbs" / "bench"))
    return counts


def _searches(client: httpx.Client, n: int) -> float:
    """p50 of ``n`` sequential searches, in ms."""
    times = []
    for i in range(n):
        began = time.perf_counter()
        client.post("/v1/kbs/bench/search", json={"query": QUERIES[i % len(QUERIES)]}).raise_for_status()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 2)


def _run(
    home: Path, args: argparse.Namespace, kb: dict[str, Any], *, compact_by_hand: bool
) -> dict[str, Any]:
    settings = Settings(home=home, embedding={"model": "fake"}, reranker={"model": "fake"}, kb=kb)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    out: dict[str, Any] = {"settings": kb}
    try:
        while not server.started or app.state.finesift.phase != "ready":
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            client.post("/v1/kbs", json={"name": "bench"}).raise_for_status()
            began = time.perf_counter()
            for i in range(args.uploads):
                text = f"note number {i}: compaction keeps the store small; search latency stays flat."
                files = [("files", (f"n{i}.md", text.encode()))]
                client.post("/v1/kbs/bench/documents", files=files).raise_for_status()
            out["upload_s"] = round(time.perf_counter() - began, 2)
            while app.state.finesift_kbs.compacting:
                time.sleep(0.05)
            out["after_uploads"] = {**_store(home), "search_p50_ms": _searches(client, args.searches)}
            if compact_by_hand:
                began = time.perf_counter()
                with KnowledgeBase.open("bench", settings=settings) as base:
                    base.optimize()
                out["optimize_s"] = round(time.perf_counter() - began, 2)
                out["after_optimize"] = {**_store(home), "search_p50_ms": _searches(client, args.searches)}
    finally:
        server.should_exit = True
        thread.join(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--searches", type=int, default=60)
    args = parser.parse_args()
    runs = {
        "never": ({"optimize_versions": 10**9, "optimize_keep": 0.001}, True),
        "default": ({}, False),
        "keep_1ms": ({"optimize_keep": 0.001}, False),
    }
    result: dict[str, Any] = {"uploads": args.uploads, "searches": args.searches}
    for name, (kb, by_hand) in runs.items():
        with tempfile.TemporaryDirectory() as home:
            result[name] = _run(Path(home), args, kb, compact_by_hand=by_hand)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
