"""Resume after kill -9, and the CLI: one-line errors with exit codes, JSON summaries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from finesift.train.embedding import EmbeddingTrainConfig, train_embedding  # noqa: E402

STEPS = 6


def _args(model: Path, data: Path, out: Path) -> list[str]:
    return [
        "train", "embedding", str(data), "--split", "test", "--model", str(model), "--out", str(out),
        "--batch-size", "4", "--epochs", "3", "--max-steps", str(STEPS), "--save-steps", "1",
        "--hard-negatives", "1", "--lr", "1e-2", "--precision", "fp32", "--no-progress", "--json",
    ]  # fmt: skip


def _config(model: Path, out: Path, *, resume: bool) -> EmbeddingTrainConfig:
    return EmbeddingTrainConfig(
        model=str(model), out=out, split="test", batch_size=4, epochs=3, max_steps=STEPS, save_steps=1,
        hard_negatives=1, lr=1e-2, precision="fp32", progress=False, resume=resume,
    )  # fmt: skip


@pytest.mark.slow
def test_resume_after_sigkill_reaches_the_same_weights(
    tiny_embedding_model: Path, tiny_en: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "finesift", *_args(tiny_embedding_model, tiny_en, out)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline = time.monotonic() + 300
        while not (out / "checkpoint-1").is_dir():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no checkpoint-1 within 300 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    result = train_embedding(tiny_en, _config(tiny_embedding_model, out, resume=True))
    assert result.steps == STEPS and 1 <= result.resumed_from < STEPS
    assert (out / f"checkpoint-{STEPS}").is_dir() and not list(out.glob(".checkpoint-*"))
    lineage = json.loads((out / "finesift-lineage.json").read_text())
    assert lineage["step"] == STEPS
    straight = tmp_path / "straight"
    train_embedding(tiny_en, _config(tiny_embedding_model, straight, resume=False))
    resumed, reference = (
        load_file(str(out / "model.safetensors")),
        load_file(str(straight / "model.safetensors")),
    )
    assert resumed.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.allclose(resumed[name], value, atol=1e-6), name


def test_resume_refuses_changed_settings_and_empty_dirs(
    tiny_embedding_model: Path, tiny_en: Path, tmp_path: Path
) -> None:
    from finesift.errors import Conflict, NotFound

    out = tmp_path / "run"
    config = EmbeddingTrainConfig(
        model=str(tiny_embedding_model), out=out, split="test", max_steps=1, save_steps=1, batch_size=8,
        hard_negatives=0, precision="fp32", progress=False,
    )  # fmt: skip
    train_embedding(tiny_en, config)
    changed = EmbeddingTrainConfig(**{**config.__dict__, "resume": True, "temperature": 0.02})
    with pytest.raises(Conflict, match="cannot resume") as refused:
        train_embedding(tiny_en, changed)
    message = str(refused.value)
    assert "temperature: 0.05 there, 0.02 now" in message and "\n" not in message
    assert "batch" not in message  # only the option that differs is named
    with pytest.raises(NotFound, match="no complete checkpoint"):
        train_embedding(
            tiny_en, EmbeddingTrainConfig(**{**config.__dict__, "resume": True, "out": tmp_path / "none"})
        )


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--batch-size", "0"], 2, "--batch-size must be at least 1"),
        (["--dims", "a,b"], 2, "--dims takes comma-separated integers"),
        (["--split", "nope"], 4, "available splits: dev, test"),
        (["--precision", "fp8"], 2, "'--precision': 'fp8' is not one of"),
    ],
)
def test_train_cli_errors_are_one_line(
    extra: list[str], code: int, message: str, tiny_en: Path, tmp_path: Path
) -> None:
    args = ["train", "embedding", str(tiny_en), "--model", "m", "--out", str(tmp_path / "o"), *extra]
    proc = subprocess.run(
        [sys.executable, "-m", "finesift", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in proc.stderr


def test_bad_data_is_one_line_naming_the_line(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"query": "q", "positive": "p"}\n{"query": "q2"}\n', encoding="utf-8")
    args = ["train", "embedding", str(data), "--model", "m", "--out", str(tmp_path / "o")]
    proc = subprocess.run(
        [sys.executable, "-m", "finesift", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert f'{data}:2: "positive" is missing' in proc.stderr and "Traceback" not in proc.stderr


def test_merge_cli_json_and_refusal(
    tiny_embedding_model: Path, tiny_reranker_model: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from finesift.cli.app import app

    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "merge",
            str(tiny_embedding_model),
            str(tiny_embedding_model),
            "--out",
            str(tmp_path / "m"),
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["copied"] > 0
    args = ["merge", str(tiny_embedding_model), str(tiny_reranker_model), "--out", str(tmp_path / "n")]
    proc = subprocess.run(
        [sys.executable, "-m", "finesift", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 7 and proc.stderr.startswith("error: 1_Pooling/config.json is missing")
