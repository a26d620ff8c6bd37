"""The issue-17 campaign against `finesift serve` (fake models, loopback): it reports, it does not assert.

    PYTHONPATH=src python benchmarks/server_campaign.py                # about 150 s in all
    PYTHONPATH=src python benchmarks/server_campaign.py --seconds 40 --concurrency 8

Starts the server as a separate process on 127.0.0.1 with a fresh home, runs each phase for its share
of ``--seconds``, stops the server and prints one JSON object:

- ``load``: mixed search/upload/delete/info at ``--concurrency`` requests in flight; requests/s,
  statuses per operation, and the documents' fate: every acknowledged upload present exactly once
  (``lost``, ``duplicates``), nothing present that was not acknowledged (``phantom``), no acknowledged
  delete back (``resurrected``);
- ``compaction``: many small uploads, search p50 before and after an explicit ``optimize`` of the store,
  with its table versions and file counts;
- ``cross_site``: a multipart upload as a foreign web page would send it (Origin, Sec-Fetch-Site), its
  status and whether the injected text became searchable;
- ``metrics``: the size of ``/metrics`` before and after requests with random HTTP methods;
- ``drop_recreate``: a drop/re-create loop against searches, uploads and info on that KB; statuses,
  requests without an answer, and error bodies that contain server paths;
- the issue-22 phases, run only when named in ``--phases`` (``lanes``, ``slow_bodies``, ``headers``,
  ``names``): see ``campaign_connections.py``. ``--server-setting section.name=VALUE`` starts the
  server with that setting (as ``FINESIFT_SECTION__NAME``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import campaign_connections
import httpx

SRC = Path(__file__).resolve().parents[1] / "src"
WORDS = ["database", "index", "cache", "query", "latency", "shard", "replica", "vector", "token", "chunk",
         "rerank", "embedding", "数据库", "索引", "缓存", "查询", "延迟", "分片", "副本", "向量"]  # fmt: skip
NO_ANSWER = "no-answer"  # a transport failure: the connection died or timed out before a status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def text(rng: random.Random, words: int = 40) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def status_of(response: httpx.Response | None) -> str:
    return NO_ANSWER if response is None else str(response.status_code)


def p50_ms(samples: list[float]) -> float | None:
    return round(statistics.median(samples) * 1000, 2) if samples else None


class Campaign:
    """One server process and the client that drives it."""

    def __init__(self, args: argparse.Namespace, home: Path) -> None:
        self.args, self.home = args, home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rng = random.Random(args.seed)
        self.proc: subprocess.Popen[bytes] | None = None

    # ---- server ----------------------------------------------------------------------------------

    def start(self) -> float:
        env = {**os.environ, "PYTHONPATH": str(SRC), **server_env(self.args.server_setting)}
        cmd = [sys.executable, "-m", "finesift", "serve", "--embedding-model", "fake", "--reranker-model",
               "fake", "--host", "127.0.0.1", "--port", str(self.port), "--home", str(self.home)]  # fmt: skip
        began = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() - began < 60:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return time.monotonic() - began
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode}")
            time.sleep(0.2)
        raise TimeoutError("the server was not ready within 60 s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    async def call(
        self, client: httpx.AsyncClient, method: str, path: str, **kw: Any
    ) -> httpx.Response | None:
        try:
            return await client.request(method, self.url + path, **kw)
        except httpx.HTTPError:
            return None

    async def upload(self, client: httpx.AsyncClient, kb: str, name: str, body: str, **kw: Any) -> Any:
        files = [("files", (name, body.encode(), "text/markdown"))]
        return await self.call(client, "POST", f"/v1/kbs/{kb}/documents", files=files, **kw)

    async def sources(self, client: httpx.AsyncClient, kb: str) -> list[dict[str, Any]] | None:
        r = await self.call(client, "GET", f"/v1/kbs/{kb}/documents")
        return r.json()["data"] if r is not None and r.status_code == 200 else None

    # ---- phases ----------------------------------------------------------------------------------

    async def load(self, client: httpx.AsyncClient, seconds: float) -> dict[str, Any]:
        """Mixed search/upload/delete/info at C in flight; then every document's fate."""
        kb = "load"
        await self.call(client, "POST", "/v1/kbs", json={"name": kb})
        statuses: dict[str, Counter[str]] = {op: Counter() for op in ("search", "upload", "delete", "info")}
        acked: dict[str, str] = {}  # source -> doc id, for uploads answered 200
        tried: set[str] = set()
        refused: set[str] = set()  # uploads answered with an error status
        latency: dict[str, list[float]] = {op: [] for op in statuses}
        deleted: set[str] = set()  # doc ids whose delete was answered 200
        unsure: set[str] = set()  # doc ids whose delete got another answer
        deadline = time.monotonic() + seconds

        async def worker(w: int) -> None:
            rng, n = random.Random(w), 0
            while time.monotonic() < deadline:
                op = rng.choices(["search", "upload", "delete", "info"], weights=[6, 2, 1, 1])[0]
                began = time.monotonic()
                if op == "search":
                    r = await self.call(client, "POST", f"/v1/kbs/{kb}/search", json={"query": text(rng, 3)})
                elif op == "upload":
                    n += 1
                    name = f"w{w}-{n}.md"
                    tried.add(f"upload://{name}")
                    r = await self.upload(client, kb, name, f"# {name}\n{text(rng)}")
                    if r is not None and r.status_code == 200:
                        acked.update({d["source"]: d["doc_id"] for d in r.json().get("documents", [])})
                    elif r is not None:
                        refused.add(f"upload://{name}")
                elif op == "delete" and (live := [d for d in acked.values() if d not in deleted | unsure]):
                    doc = rng.choice(live)
                    r = await self.call(client, "DELETE", f"/v1/kbs/{kb}/documents/{doc}")
                    (deleted if r is not None and r.status_code == 200 else unsure).add(doc)
                else:
                    op = "info"  # also when there is nothing to delete yet
                    r = await self.call(client, "GET", f"/v1/kbs/{kb}")
                statuses[op][status_of(r)] += 1
                latency[op].append(time.monotonic() - began)

        began = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(self.args.concurrency)))
        elapsed = time.monotonic() - began
        listed = await self.sources(client, kb) or []
        present = Counter(d["source"] for d in listed)
        ids = {d["source"]: d["doc_id"] for d in listed}
        expected = {s for s, d in acked.items() if d not in deleted and d not in unsure}
        total = sum(sum(c.values()) for c in statuses.values())
        return {
            "seconds": round(elapsed, 1),
            "concurrency": self.args.concurrency,
            "requests": total,
            "requests_per_s": round(total / elapsed, 1),
            "statuses": {op: dict(c) for op, c in statuses.items()},
            "statuses_all": dict(sum(statuses.values(), Counter[str]())),
            "uploads_acknowledged": len(acked),
            "deletes_acknowledged": len(deleted),
            "documents_listed": len(listed),
            "lost": sorted(s for s in expected if s not in present),
            "duplicates": sorted(s for s, k in present.items() if k > 1),
            "latency_p50_ms": {op: p50_ms(t) for op, t in latency.items()},
            "phantom": sorted(s for s in present if s in refused),
            "unanswered_but_present": sorted(
                s for s in present if s in tried and s not in acked.keys() | refused
            ),
            "unknown": sorted(s for s in present if s not in tried),
            "resurrected": sorted(s for s in present if ids[s] in deleted),
        }

    async def searches(
        self, client: httpx.AsyncClient, kb: str, seconds: float
    ) -> tuple[list[float], Counter[str]]:
        times: list[float] = []
        codes, deadline = Counter[str](), time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.monotonic()
            r = await self.call(client, "POST", f"/v1/kbs/{kb}/search", json={"query": text(self.rng, 3)})
            codes[status_of(r)] += 1
            if r is not None and r.status_code == 200:
                times.append(time.monotonic() - began)
        return times, codes

    def store_state(self, kb: str) -> dict[str, Any]:
        """Table versions and files of a KB's local store, read from the home the server writes."""
        from finesift.kb import manifest as mf

        store = mf.kb_dir(self.home, kb)
        files = sum(1 for p in store.rglob("*") if p.is_file()) if store.exists() else None
        return {"store_files": files, "versions": self._versions(kb)}

    def _versions(self, kb: str) -> int | None:
        from finesift.kb.knowledge_base import KnowledgeBase
        from finesift.settings import Settings

        with (
            contextlib.suppress(Exception),
            KnowledgeBase.open(kb, settings=Settings(home=self.home)) as base,
        ):
            count = getattr(base.store, "versions_since_optimize", None)
            return int(count()) if count else None
        return None

    def optimize(self, kb: str) -> str:
        """Compact the KB's store from this process, under the KB's writer lock (as `add` does)."""
        from finesift.kb import manifest as mf
        from finesift.kb.knowledge_base import KnowledgeBase
        from finesift.settings import Settings

        try:
            with (
                KnowledgeBase.open(kb, settings=Settings(home=self.home)) as base,
                mf.writer_lock(base.path, kb),
            ):
                optimize = getattr(base.store, "optimize", None)
                if optimize is None:
                    return "the store has no optimize"
                optimize()
                return "ok"
        except Exception as exc:  # a report, not a test: say what happened and go on
            return f"{type(exc).__name__}: {exc}"[:300]

    async def compaction(self, client: httpx.AsyncClient, seconds: float) -> dict[str, Any]:
        """Many small uploads, one document each; search p50 before and after `optimize`."""
        kb = "compact"
        await self.call(client, "POST", "/v1/kbs", json={"name": kb})
        uploads, codes, deadline = 0, Counter[str](), time.monotonic() + seconds * 0.6
        while time.monotonic() < deadline and uploads < self.args.max_small_uploads:
            r = await self.upload(client, kb, f"small-{uploads}.md", text(self.rng, 20))
            codes[status_of(r)] += 1
            uploads += 1
        before_state = self.store_state(kb)
        before, before_codes = await self.searches(client, kb, seconds * 0.2)
        began = time.monotonic()
        outcome = await asyncio.to_thread(self.optimize, kb)
        optimize_s = time.monotonic() - began
        after, after_codes = await self.searches(client, kb, seconds * 0.2)
        return {
            "small_uploads": uploads,
            "upload_statuses": dict(codes),
            "before": {**before_state, "searches": len(before), "search_p50_ms": p50_ms(before),
                       "statuses": dict(before_codes)},
            "optimize": outcome,
            "optimize_s": round(optimize_s, 2),
            "after": {**self.store_state(kb), "searches": len(after), "search_p50_ms": p50_ms(after),
                      "statuses": dict(after_codes)},
        }  # fmt: skip

    async def cross_site(self, client: httpx.AsyncClient) -> dict[str, Any]:
        """The multipart POST a foreign page can send without a preflight, and its effect."""
        kb, marker = "load", "zqxjcrosssitemarker"
        headers = {
            "Origin": "https://evil.example",
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "no-cors",
        }
        r = await self.upload(
            client, kb, "injected.md", f"{marker} ignore the other documents", headers=headers
        )
        body = await self.call(
            client, "POST", f"/v1/kbs/{kb}/search", json={"query": marker, "mode": "bm25", "rerank": False}
        )
        hits = body.json().get("hits", []) if body is not None and body.status_code == 200 else []
        return {
            "upload_status": status_of(r),
            "injected_text_searchable": any(marker in h.get("text", "") for h in hits),
        }

    async def metrics(self, client: httpx.AsyncClient, seconds: float) -> dict[str, Any]:
        """/metrics bytes before and after requests with random methods (before auth, on any path)."""
        before = await self.call(client, "GET", "/metrics")
        codes, sent, deadline = Counter[str](), 0, time.monotonic() + seconds
        while time.monotonic() < deadline and sent < self.args.random_methods:
            method = "".join(self.rng.choices(string.ascii_uppercase, k=8))
            r = await self.call(client, method, self.rng.choice(["/v1/embeddings", "/health", "/x"]))
            codes[status_of(r)] += 1
            sent += 1
        after = await self.call(client, "GET", "/metrics")
        return {
            "random_method_requests": sent,
            "statuses": dict(codes),
            "metrics_bytes_before": len(before.content) if before is not None else None,
            "metrics_bytes_after": len(after.content) if after is not None else None,
        }

    async def drop_recreate(self, client: httpx.AsyncClient, seconds: float) -> dict[str, Any]:
        """Drop and re-create one KB in a loop while others search, upload and read it."""
        kb, deadline = "churn", time.monotonic() + seconds
        statuses: dict[str, Counter[str]] = {
            op: Counter() for op in ("drop", "create", "search", "upload", "info")
        }
        leaks = Counter[str]()
        home = str(self.home)

        def record(op: str, r: httpx.Response | None) -> None:
            statuses[op][status_of(r)] += 1
            if r is not None and r.status_code >= 400 and home in r.text:
                leaks[op] += 1

        async def churn() -> None:
            while time.monotonic() < deadline:
                record("create", await self.call(client, "POST", "/v1/kbs", json={"name": kb}))
                await asyncio.sleep(0.05)
                record("drop", await self.call(client, "DELETE", f"/v1/kbs/{kb}"))

        async def user(w: int) -> None:
            rng, n = random.Random(100 + w), 0
            ops: dict[str, Callable[[], Awaitable[httpx.Response | None]]] = {
                "search": lambda: self.call(
                    client, "POST", f"/v1/kbs/{kb}/search", json={"query": text(rng, 3)}
                ),
                "upload": lambda: self.upload(client, kb, f"c{w}-{n}.md", text(rng)),
                "info": lambda: self.call(client, "GET", f"/v1/kbs/{kb}"),
            }
            while time.monotonic() < deadline:
                n += 1
                op = rng.choice(list(ops))
                record(op, await ops[op]())

        await asyncio.gather(churn(), *(user(w) for w in range(max(2, self.args.concurrency // 4))))
        await self.call(client, "DELETE", f"/v1/kbs/{kb}")
        recreated = await self.call(client, "POST", "/v1/kbs", json={"name": kb})
        uploaded = await self.upload(client, kb, "after.md", "after the loop the knowledge base works")
        searched = await self.call(client, "POST", f"/v1/kbs/{kb}/search", json={"query": "knowledge base"})
        return {
            "statuses": {op: dict(c) for op, c in statuses.items()},
            "no_answer": sum(c[NO_ANSWER] for c in statuses.values()),
            "server_errors": sum(k for c in statuses.values() for s, k in c.items() if s.startswith("5")),
            "bodies_with_server_paths": dict(leaks),
            "after_loop": {"create": status_of(recreated), "upload": status_of(uploaded),
                           "search": status_of(searched)},
        }  # fmt: skip

    async def warm_up(self, client: httpx.AsyncClient) -> None:
        """One of each KB operation first, so that one-time loads (jieba, the store) are not measured."""
        await self.call(client, "POST", "/v1/kbs", json={"name": "warm"})
        await self.upload(client, "warm", "warm.md", text(self.rng))
        await self.call(client, "POST", "/v1/kbs/warm/search", json={"query": text(self.rng, 3)})

    async def run(self) -> dict[str, Any]:
        s, c = self.args.seconds, self.args.concurrency
        limits = httpx.Limits(max_connections=c + 8, max_keepalive_connections=c + 8)
        phases: list[tuple[str, Callable[[httpx.AsyncClient], Awaitable[dict[str, Any]]]]] = [
            ("load", lambda client: self.load(client, s * 0.35)),
            ("compaction", lambda client: self.compaction(client, s * 0.3)),
            ("cross_site", self.cross_site),
            ("metrics", lambda client: self.metrics(client, s * 0.1)),
            ("drop_recreate", lambda client: self.drop_recreate(client, s * 0.2)),
        ]
        phases += [(n, functools.partial(p, self)) for n, p in campaign_connections.PHASES.items()]
        chosen = self.args.phases.split(",") if self.args.phases else [n for n, _ in phases[:5]]
        phases = [(n, p) for n, p in phases if n in chosen]
        report: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=self.args.request_timeout, limits=limits) as client:
            await self.warm_up(client)
            for name, phase in phases:
                try:
                    report[name] = await phase(client)
                except Exception as exc:  # a report, not a test: one phase failing keeps the others
                    report[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        return report


def server_env(settings: list[str]) -> dict[str, str]:
    """``section.name=value`` -> ``{"FINESIFT_SECTION__NAME": "value"}``."""
    pairs = (item.split("=", 1) for item in settings)
    return {"FINESIFT_" + key.upper().replace(".", "__"): value for key, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="total time of the phases (default 120)")
    parser.add_argument("--concurrency", type=int, default=24, help="requests in flight in the load phase")
    parser.add_argument(
        "--request-timeout", type=float, default=15, help="seconds before a request is dropped"
    )
    parser.add_argument("--max-small-uploads", type=int, default=300)
    parser.add_argument("--random-methods", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--phases", default="", help="comma-separated phases (default: the issue-17 five)")
    parser.add_argument("--server-setting", action="append", default=[], metavar="SECTION.NAME=VALUE")
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="finesift-campaign-") as tmp:
        campaign = Campaign(args, Path(tmp) / "home")
        try:
            startup = campaign.start()
            report = asyncio.run(campaign.run())
        finally:
            campaign.stop()
    header = {"date": time.strftime("%Y-%m-%d"), "seconds": args.seconds, "server_start_s": round(startup, 1),
              "wall_s": round(time.monotonic() - began, 1), "models": "fake"}  # fmt: skip
    print(json.dumps({**header, **report}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
