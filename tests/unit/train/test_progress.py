"""Training is not silent off a terminal: progress lines, mining progress, and a clear Ctrl-C."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from finesift.train.progress import Progress, duration


def test_progress_lines_off_a_terminal_name_step_loss_rate_and_eta() -> None:
    stream = io.StringIO()  # not a tty
    with Progress(4, desc="train", stream=stream, every_s=3600) as progress:
        for _ in range(4):
            progress.update(examples=16, loss=0.5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # the first and the last step; nothing between within every_s
    assert lines[0].startswith("train: step 1/4 (25 %), loss 0.5000, ") and "examples/s" in lines[0]
    assert "ETA " in lines[0] and lines[1].startswith("train: step 4/4 (100 %)")
    quiet = io.StringIO()
    with Progress(4, desc="train", stream=quiet, enabled=False) as progress:
        progress.update(loss=0.5)
    assert quiet.getvalue() == ""
    assert [duration(s) for s in (5, 185, 7620)] == ["5s", "3m05s", "2h07m"]


@pytest.fixture
def st_run(tiny_st_model: Path, tmp_path: Path):
    pytest.importorskip("torch")
    from finesift.train.embedding import EmbeddingTrainConfig

    return EmbeddingTrainConfig(
        model=str(tiny_st_model), out=tmp_path / "run", split="test", batch_size=4, max_steps=3, save_steps=1,
        lr=1e-3, hard_negatives=1, precision="fp32", max_length=64,
    )  # fmt: skip


def test_a_run_off_a_terminal_logs_mining_and_steps(st_run, tiny_en: Path, capsys) -> None:
    from finesift.train.embedding import train_embedding

    train_embedding(tiny_en, st_run)
    err = capsys.readouterr().err
    assert "mining hard negatives: text " in err
    assert "train: step 1/3 (33 %), loss " in err and "train: step 3/3 (100 %)" in err


def test_ctrl_c_says_where_the_last_checkpoint_is(
    st_run, tiny_en: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finesift.train import embedding

    real, calls = embedding._Run._step, []

    def interrupted_on_third(self, micro_batches):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, micro_batches)

    monkeypatch.setattr(embedding._Run, "_step", interrupted_on_third)
    with pytest.raises(KeyboardInterrupt):
        embedding.train_embedding(tiny_en, st_run)
    err = capsys.readouterr().err
    assert f"interrupted at step 2 of 3: the last checkpoint is {st_run.out / 'checkpoint-2'}" in err
    assert "--resume" in err
