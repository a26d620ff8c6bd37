"""Embedding tokens/s of finesift's ``llamacpp`` backend beside llama-cpp-python used directly; prints JSON.

    python benchmarks/llamacpp_speed.py --gguf-dir DIR [--types f16,q8_0,q4_k_m] [--texts 8] [--rounds 3]

``DIR`` holds ``emb.<type>.gguf`` files of the true Qwen3-Embedding-0.6B shape (random weights,
transformers' init), built from ``../shared/models`` with ``benchmarks/models.py`` and converted with
``finesift gguf convert``. Every engine runs in its own process (OpenMP reads its wait policy when it
loads), one text per decode, engines alternating within each round; each row records the load average.

Engines: ``direct`` is ``Llama(embedding=True, pooling LAST).embed(text)``; ``before`` is the backend's
previous decode (one decode in embedding mode: the LM head over every token); ``after`` is the backend
now (the prefix decoded without outputs, the last token alone in embedding mode). ``spin`` rows keep
libgomp's own wait (``GOMP_SPINCOUNT=300000``, its default), ``passive`` rows set ``OMP_WAIT_POLICY=passive``
(the backend's default since it sets it when the user set nothing).

``--builds portable=,native=DIR`` runs every engine once per llama-cpp-python build, alternating
within each round: ``DIR`` holds a build installed with ``pip install --target DIR WHEEL`` and goes
first on the workers' ``PYTHONPATH`` (empty: the environment's own). Compare builds by CPU seconds per
token on a shared machine: wall time counts the other users' jobs, CPU time mostly does not.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: (engine, wait) pairs, run in this order every round.
CONFIGS = (
    ("direct", "spin"),
    ("before", "spin"),
    ("after", "spin"),
    ("direct", "passive"),
    ("before", "passive"),
    ("after", "passive"),
)
WAITS = {"spin": {"GOMP_SPINCOUNT": "300000"}, "passive": {"OMP_WAIT_POLICY": "passive"}}
MAX_LENGTH = 1024


def texts(n: int) -> list[str]:
    """``n`` documents of about 150 tokens, English and Chinese alternating."""
    en = "Retrieval systems embed every document once and compare vectors at query time. "
    zh = "检索系统为每个文档计算一次向量，在查询时比较向量之间的相似度，然后返回最相近的结果。"
    return [f"{i}: " + (en * 9 if i % 2 == 0 else zh * 5) for i in range(n)]


def worker(engine: str, path: str, n_texts: int, threads: int, budget: float) -> dict[str, Any]:
    """Embed the texts with ``engine`` in this process; tokens/s, CPU seconds, peak RSS."""
    import numpy as np

    if engine.startswith("transformers"):
        return torch_worker(engine.split("-")[1], path, texts(n_texts), threads, budget)
    from finesift.embedding.llamacpp import LlamaCppEmbedder
    from finesift.testing.llamacpp import one_shot_embedding

    backend = LlamaCppEmbedder(path, max_length=MAX_LENGTH)
    backend.llama_cpp.llama_set_n_threads(backend.llm._ctx.ctx, threads, threads)
    items = texts(n_texts)
    ids = [backend._tokens(t) for t in items]
    decode = {"direct": None, "before": lambda i: one_shot_embedding(backend, i), "after": backend._decode}[
        engine
    ]
    if decode is None:
        backend.llm.embed(items[0])  # direct: Llama.embed, which tokenizes itself
    else:
        decode(ids[0])  # warm-up
    cpu0, began = time.process_time(), time.perf_counter()
    vectors = []
    for text, text_ids in zip(items, ids, strict=True):
        if vectors and time.perf_counter() - began > budget:
            break  # a busy machine: stop after the time budget, at least one text done
        vectors.append(np.asarray(backend.llm.embed(text)) if decode is None else decode(text_ids))
    seconds = time.perf_counter() - began
    tokens = sum(map(len, ids[: len(vectors)]))
    return {
        "texts": len(vectors),
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 2),
        "cpu_s_per_token": round((time.process_time() - cpu0) / tokens, 5),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "vectors": np.asarray(vectors).round(6).tolist(),
    }


def torch_worker(dtype: str, model_dir: str, items: list[str], threads: int, budget: float) -> dict[str, Any]:
    """finesift's transformers backend on the same texts, one text per call (``dtype``: float32|auto)."""
    import torch

    from finesift.embedding.factory import build_embedder
    from finesift.settings import EmbeddingSettings, HubSettings

    torch.set_num_threads(threads)
    settings = EmbeddingSettings(model=model_dir, backend="transformers", dtype=dtype, device="cpu")
    embedder = build_embedder(settings, HubSettings(offline=True))
    embedder.embed_documents(items[:1])
    cpu0, began, done = time.process_time(), time.perf_counter(), 0
    for text in items:
        if done and time.perf_counter() - began > budget:
            break
        embedder.embed_documents([text])
        done += 1
    seconds = time.perf_counter() - began
    tokens = sum(embedder.backend.count_tokens(items[:done]))
    return {
        "texts": done,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 2),
        "cpu_s_per_token": round((time.process_time() - cpu0) / tokens, 5),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "vectors": [],
    }


def run_one(
    engine: str, wait: str, path: Path | str, args: argparse.Namespace, site: str = ""
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(WAITS[wait])
    if site:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, __file__, "--worker", engine, str(path), str(args.texts), str(args.threads)]
    cmd.append(str(args.budget))
    load = os.getloadavg()[0]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=args.timeout)
        row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:  # spinning threads on a loaded machine: record that it did not finish
        row = {"texts": 0, "tokens": 0, "tokens_per_s": None, "cpu_s_per_token": None, "vectors": []}
    row.update(engine=engine, wait=wait, load_before=round(load, 2), load_after=round(os.getloadavg()[0], 2))
    return row


def fidelity(rows: list[dict[str, Any]]) -> float:
    """The lowest cosine between any engine's vectors and the first ``before`` row's (without one,
    the first row's: ``--only after/passive --builds ...`` compares builds), same type."""
    import numpy as np

    ref = np.asarray(next((r["vectors"] for r in rows if r["engine"] == "before"), rows[0]["vectors"]))
    worst = 1.0
    for row in rows:
        if not row["vectors"]:
            continue
        n = min(len(ref), len(row["vectors"]))
        got, want = np.asarray(row["vectors"][:n]), ref[:n]
        cos = np.sum(want * got, 1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
        worst = min(worst, float(cos.min()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gguf-dir", type=Path, required=True)
    parser.add_argument("--types", default="f16,q8_0,q4_k_m")
    parser.add_argument(
        "--torch-model",
        default=None,
        help="also run finesift's transformers backend (fp32, bf16) on this directory",
    )
    parser.add_argument("--only", default="", help="comma-separated engine/wait pairs, e.g. after/passive")
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run after the first text")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is given up")
    parser.add_argument("--builds", default="", help="NAME=DIR,... llama-cpp-python builds (module doc)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    builds = dict(b.split("=", 1) for b in args.builds.split(",")) if args.builds else {"": ""}
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "args": vars(args)}
    table = []
    for file_type in args.types.split(","):
        path = args.gguf_dir / f"emb.{file_type}.gguf"
        rows = []
        for rnd in range(args.rounds):
            for (engine, wait), build in itertools.product(configs(args), builds):
                where = args.torch_model if engine.startswith("transformers") else path
                row = run_one(engine, wait, where, args, builds[build])
                row.update(type=file_type, round=rnd, **({"build": build} if build else {}))
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "vectors"}), flush=True)
        table.append(
            {"type": file_type, "min_cos_vs_before": round(fidelity(rows), 6), "summary": summary(rows)}
        )
        for row in rows:
            row.pop("vectors")
        results.setdefault("runs", []).extend(rows)
    results["table"] = table
    text = json.dumps(results, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps(table))


def configs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The (engine, wait) pairs to run: all, or those ``--only`` names as ``engine/wait``."""
    torch = (
        [("transformers-float32", "passive"), ("transformers-auto", "passive")] if args.torch_model else []
    )
    chosen = [*CONFIGS, *torch]
    if args.only:
        chosen = [c for c in chosen if "/".join(c) in args.only.split(",")]
    return chosen


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median and spread of tokens/s per (build, engine, wait)."""
    out = []
    for key in dict.fromkeys((r.get("build"), r["engine"], r["wait"]) for r in rows):
        done = [r for r in rows if (r.get("build"), r["engine"], r["wait"]) == key and r["tokens_per_s"]]
        speeds, cpu = [r["tokens_per_s"] for r in done], [r["cpu_s_per_token"] for r in done]
        named = {"build": key[0]} if key[0] else {}
        if not done:
            out.append({**named, "engine": key[1], "wait": key[2], "tokens_per_s": None, "timed_out": True})
            continue
        out.append(
            {
                **named,
                "engine": key[1],
                "wait": key[2],
                "tokens_per_s": statistics.median(speeds),
                "min": min(speeds),
                "max": max(speeds),
                "cpu_s_per_token": statistics.median(cpu),
            }
        )
    return out


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(*sys.argv[2:4], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))))
    else:
        main()
