"""OpenMP wait policies and thread counts for finesift's library and server, alone and beside a busy process.

    python benchmarks/thread_policy.py --texts 8 --rounds 2 --out benchmarks/results/thread-policy.json

Each configuration (policy x threads x load) runs in fresh processes, configurations alternate within a
round. ``library``: one process loads the true-shape embedder and embeds the texts (the CLI runs the
same engine in its own process). ``serve``: ``finesift serve`` embeds the same texts sent as concurrent
HTTP requests of two texts, so tokenization, JSON and the event loop share the cores with torch.
``load``: that many busy-looping processes run beside it (another program on the machine). Reports
tokens/s and the CPU seconds the measured process used: spinning shows as CPU time without tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(HERE))

import models  # noqa: E402
import server_load  # noqa: E402
import workload  # noqa: E402

#: Policy name -> the environment it sets ("default": OpenMP's own spin-then-sleep).
POLICIES: dict[str, dict[str, str]] = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "active": {"OMP_WAIT_POLICY": "ACTIVE"},
    "spin10k": {"GOMP_SPINCOUNT": "10000"},
}
OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--models-dir", type=Path, default=ROOT / ".bench" / "models")
    p.add_argument("--texts", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--policies", default="default,passive,active,spin10k")
    p.add_argument("--threads", default="1,2", help="OpenMP thread counts to try")
    p.add_argument("--loads", default="0,1", help="busy processes beside the measured one")
    p.add_argument("--modes", default="library,serve")
    p.add_argument("--out", type=Path)
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    return p.parse_args()


def worker(spec_file: Path) -> None:
    """Inside the measured process: load, warm up, embed, print seconds and CPU seconds."""
    import resource

    from finesift import load_embedder

    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    emb = load_embedder(spec["model"], device="cpu")
    emb.embed_documents(spec["texts"][:2])
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    emb.embed_documents(spec["texts"])
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu}))


def clean_env(policy: str, threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    env.update(POLICIES[policy], OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    # finesift's own default must not hide the policy under test: "default" here means OpenMP's.
    env["FINESIFT_THREADS__WAIT_POLICY"] = "default"
    return env


def run_library(model: str, texts: list[str], env: dict[str, str], tmp: Path) -> dict[str, Any]:
    spec = tmp / "spec.json"
    spec.write_text(json.dumps({"model": model, "texts": texts}), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_serve(model: str, texts: list[str], env: dict[str, str]) -> dict[str, Any]:
    import httpx

    port = server_load.free_port()
    cmd = [sys.executable, "-m", "finesift", "serve", "--embedding-model", model, "--reranker-model", "none"]
    cmd += ["--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(
        cmd, env={**env, "PYTHONPATH": str(SRC)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server_load.wait_ready(url, timeout=300)
        with httpx.Client(base_url=url, timeout=600) as client:
            client.post("/v1/embeddings", json={"input": texts[:2]})
            cpu0, began = _proc_cpu(proc.pid), time.perf_counter()
            _post_concurrently(url, [texts[i : i + 2] for i in range(0, len(texts), 2)])
            seconds = time.perf_counter() - began
            return {"seconds": seconds, "cpu_seconds": _proc_cpu(proc.pid) - cpu0}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _post_concurrently(url: str, batches: list[list[str]]) -> None:
    import asyncio

    import httpx

    async def go() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            responses = await asyncio.gather(
                *(client.post("/v1/embeddings", json={"input": b}) for b in batches)
            )
        for r in responses:
            r.raise_for_status()

    asyncio.run(go())


def busy(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def summarise(runs: list[dict[str, Any]], tokens: int) -> dict[str, Any]:
    good = [r for r in runs if "seconds" in r]
    if not good:
        return {"error": runs[-1].get("error")}
    rates = [tokens / r["seconds"] for r in good]
    return {
        "tok_per_s_median": round(statistics.median(rates), 1),
        "tok_per_s_min": round(min(rates), 1),
        "tok_per_s_max": round(max(rates), 1),
        "cpu_seconds_median": round(statistics.median(r["cpu_seconds"] for r in good), 2),
        "seconds_median": round(statistics.median(r["seconds"] for r in good), 2),
        "rounds": len(good),
    }


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args.worker)
        return
    import tempfile

    from transformers import AutoTokenizer

    emb_path, _ = models.ensure_models(
        args.shared.resolve(), args.models_dir, embedding_config=None, reranker_config=None, init="hf"
    )
    texts = workload.embedding_texts(args.shared / "data", args.texts)
    tokens = sum(len(ids) for ids in AutoTokenizer.from_pretrained(str(emb_path))(texts)["input_ids"])
    configs = [
        (mode, pol, int(th), int(ld))
        for mode in args.modes.split(",")
        for ld in args.loads.split(",")
        for th in args.threads.split(",")
        for pol in args.policies.split(",")
    ]
    runs: dict[str, list[dict[str, Any]]] = {}
    load_avg = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for mode, pol, th, ld in configs if rnd % 2 == 0 else configs[::-1]:
                hogs = busy(ld)
                try:
                    env = clean_env(pol, th)
                    res = (
                        run_library(str(emb_path), texts, env, Path(tmp))
                        if mode == "library"
                        else run_serve(str(emb_path), texts, env)
                    )
                finally:
                    for h in hogs:
                        h.kill()
                        h.wait()
                key = f"{mode}/{pol}/threads={th}/load={ld}"
                runs.setdefault(key, []).append(res)
                load_avg.append(os.getloadavg()[0])
                print(f"[threads] round {rnd} {key}: {res}", file=sys.stderr, flush=True)
    report = {
        "command": "python benchmarks/thread_policy.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "load_avg_1min": {"min": min(load_avg), "max": max(load_avg)},
        "workload": {"texts": len(texts), "tokens": tokens},
        "results": {k: summarise(v, tokens) for k, v in runs.items()},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
