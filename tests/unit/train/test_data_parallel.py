"""Data parallel and GradCache train exactly as one process with the whole batch (tiny Qwen3, fp32, gloo).

Two ranks are two real processes on this machine (``RANK``/``WORLD_SIZE``/``MASTER_*`` as ``torchrun``
sets them); the reference is a single process with the same global batch, run in this test process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from finesift.errors import InvalidRequest
from finesift.train.distributed import World
from finesift.train.embedding import EmbeddingTrainConfig, train_embedding
from finesift.train.reranker import RerankerTrainConfig, train_reranker

TOLERANCE = 1e-5
WORKER = r"""
import json, os, signal, sys
from pathlib import Path
spec = json.loads(sys.argv[1])
if spec.get("init"):
    import torch.distributed as dist
    dist.init_process_group("gloo")
from finesift.train import checkpoint
from finesift.train.embedding import EmbeddingTrainConfig, train_embedding
from finesift.train.reranker import RerankerTrainConfig, train_reranker
save = checkpoint.save_checkpoint
def save_then_die(out, step, *args):
    path = save(out, step, *args)
    if step == spec.get("kill_after"):
        os.kill(os.getpid(), signal.SIGKILL)
    return path
checkpoint.save_checkpoint = save_then_die
results = {}
for name, job in spec["jobs"].items():
    kind, job["out"] = job.pop("kind"), Path(job["out"])
    if kind == "embedding":
        result = train_embedding(spec["data"], EmbeddingTrainConfig(**job))
    else:
        result = train_reranker(spec["data"], RerankerTrainConfig(**job))
    results[name] = result.to_json()
if os.environ["RANK"] == "0":
    Path(spec["report"]).write_text(json.dumps(results))
if spec.get("init"):
    dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_ranks(spec: dict[str, Any], size: int = 2) -> list[subprocess.Popen[bytes]]:
    port = str(free_port())
    procs = []
    for rank in range(size):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(size)}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(spec)], env=env))
    return procs


def run_ranks(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    spec = {**spec, "report": str(tmp / "report.json")}
    procs = start_ranks(spec)
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0]
    return json.loads((tmp / "report.json").read_text())


def write_pairs(path: Path) -> Path:
    """48 pairs (3 steps of 16): two share a positive (the mask), a few lack a negative (mined, padded)."""
    topics = ["river", "engine", "violin", "glacier", "protein", "harbor", "comet", "orchard"]
    rows = []
    for i in range(48):
        topic = topics[i % len(topics)]
        row: dict[str, Any] = {
            "query": f"what is said about the {topic} number {i}?",
            "positive": f"Passage {i}: the {topic} was seen {i % 5} times near the {topics[(i + 3) % 8]}.",
        }
        if i % 7:
            row["negatives"] = [f"Unrelated note {i}: the {topics[(i + 5) % 8]} has {i % 3} parts."]
        rows.append(row)
    rows[1]["positive"] = rows[0]["positive"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def embedding_job(model: Path, out: Path, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "embedding", "model": str(model), "out": str(out), "batch_size": 16, "lora": False,
        "lr": 1e-4, "hard_negatives": 1, "dims": [16], "precision": "fp32", "device": "cpu",
        "progress": False, "split": "train", "save_steps": 3, **extra,
    }  # fmt: skip


def reranker_job(model: Path, out: Path, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "reranker", "model": str(model), "out": str(out), "batch_size": 16, "max_steps": 3,
        "negatives": 1, "lora_rank": 4, "lr": 1e-3, "precision": "fp32", "device": "cpu",
        "progress": False, "save_steps": 3, **extra,
    }  # fmt: skip


def run_here(data: Path, job: dict[str, Any]) -> dict[str, Any]:
    job = dict(job)
    kind, job["out"] = job.pop("kind"), Path(job["out"])
    if kind == "embedding":
        job["dims"] = tuple(job["dims"])
        return train_embedding(data, EmbeddingTrainConfig(**job)).to_json()
    return train_reranker(data, RerankerTrainConfig(**job)).to_json()


def weights(out: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(out / "model.safetensors"))


def assert_same_run(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Same loss at every step and the same final weights, within fp32 reordering error."""
    assert a["steps"] == b["steps"] == 3
    losses = np.abs(np.array(a["losses"]) - np.array(b["losses"]))
    assert losses.max() <= TOLERANCE, (a["losses"], b["losses"])
    wa, wb = weights(Path(a["out"])), weights(Path(b["out"]))
    assert wa.keys() == wb.keys()
    worst = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
    assert worst <= TOLERANCE, worst


@pytest.fixture(scope="module")
def runs(tiny_embedding_model: Path, tiny_reranker_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """name -> the run's summary plus its per-step losses: one process and two, plain and cached."""
    tmp = tmp_path_factory.mktemp("dp")
    data = write_pairs(tmp / "pairs.jsonl")
    jobs = {
        "one": embedding_job(tiny_embedding_model, tmp / "one"),
        "one-cached": embedding_job(tiny_embedding_model, tmp / "one-cached", mini_batch_size=4),
        "reranker-one": reranker_job(tiny_reranker_model, tmp / "reranker-one"),
    }
    two = {
        "two": embedding_job(tiny_embedding_model, tmp / "two"),
        "two-cached": embedding_job(tiny_embedding_model, tmp / "two-cached", mini_batch_size=3),
        "reranker-two": reranker_job(tiny_reranker_model, tmp / "reranker-two"),
    }
    found = {name: run_here(data, job) for name, job in jobs.items()}
    found.update(run_ranks({"data": str(data), "jobs": two, "init": True}, tmp))
    for result in found.values():
        lineage = json.loads((Path(result["out"]) / "finesift-lineage.json").read_text())
        result["lineage"] = lineage
        result["losses"] = step_losses(Path(result["out"]))
    return found


def step_losses(out: Path) -> list[float]:
    """Per-step losses from the last checkpoint's state (the summary keeps only the first and last)."""
    import torch

    state = torch.load(out / "checkpoint-3" / "finesift-train-state.pt", weights_only=False)
    return [float(x) for x in state["losses"]]


def test_two_processes_train_as_one_process_with_the_global_batch(runs) -> None:
    assert_same_run(runs["one"], runs["two"])
    assert runs["two"]["world_size"] == 2 and runs["two"]["per_process_batch"] == 8
    assert runs["two"]["examples"] == 48
    lineage = runs["two"]["lineage"]
    assert lineage["world_size"] == 2 and lineage["per_process_batch"] == 8
    assert runs["one"]["lineage"]["world_size"] == 1


def test_gradcache_mini_batches_give_the_full_batch_step(runs) -> None:
    assert_same_run(runs["one"], runs["one-cached"])
    assert runs["one-cached"]["lineage"]["hyperparameters"]["mini_batch_size"] == 4


def test_two_processes_with_gradcache_train_as_one(runs) -> None:
    assert_same_run(runs["one"], runs["two-cached"])


def test_reranker_two_processes_train_as_one(runs) -> None:
    assert_same_run(runs["reranker-one"], runs["reranker-two"])
    assert runs["reranker-two"]["world_size"] == 2 and runs["reranker-two"]["per_process_batch"] == 8


def test_global_batch_must_split_over_the_processes() -> None:
    with pytest.raises(InvalidRequest, match="multiple of 3"):
        World(rank=0, size=3).check_batch(16)
    world = World(rank=1, size=3)
    assert world.sizes(16) == [6, 5, 5] and world.span(16) == (6, 11)
    assert World(rank=2, size=3).span(2) == (2, 2)  # a last batch shorter than the world: empty slice


@pytest.mark.slow  # two more two-process launches (about 20 s of CPU)
def test_two_processes_resume_after_kill_9_to_the_same_weights(
    tiny_embedding_model: Path, tmp_path: Path, runs
) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "killed"
    job = embedding_job(tiny_embedding_model, out, save_steps=1)
    spec = {"data": str(data), "jobs": {"run": job}, "kill_after": 2, "report": str(tmp_path / "r.json")}
    procs = start_ranks(spec)
    assert procs[0].wait(timeout=300) == -signal.SIGKILL
    time.sleep(0.2)
    procs[1].kill()  # kill -9 the other rank too (it may already have failed on the lost peer)
    procs[1].wait(timeout=60)
    assert (out / "checkpoint-2").is_dir() and not (out / "checkpoint-3").exists()
    resumed = run_ranks({"data": str(data), "jobs": {"run": {**job, "resume": True}}}, tmp_path)["run"]
    assert resumed["resumed_from"] == 2
    resumed["losses"] = step_losses(out)
    assert_same_run(runs["one"], resumed)
