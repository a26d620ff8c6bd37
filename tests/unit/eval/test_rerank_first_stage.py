"""``eval --mode rerank`` offline: the error names the first-stage embedder it tried and the flag to pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from finesift.cli.app import app

ABSENT = "finesift-test/absent-embedder"


def _eval(tmp_path: Path, data: Path, *args: str) -> tuple[int, str]:
    base = ["--home", str(tmp_path), "--offline", "eval", str(data), "--reranker-model", "fake"]
    result = CliRunner().invoke(app, [*base, *args])
    return result.exit_code, result.output


def test_rerank_names_the_first_stage_model_and_the_flag(
    tiny_en: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    code, output = _eval(tmp_path, tiny_en, "--mode", "rerank", "--embedding-model", ABSENT)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 4 and len(lines) == 1, output
    assert "first-stage" in lines[0] and repr(ABSENT) in lines[0] and "--embedding-model" in lines[0]
    code, output = _eval(tmp_path, tiny_en, "--mode", "rerank", "--embedding-model", "fake")
    assert code == 0, output


def test_dense_keeps_the_plain_message(
    tiny_en: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    code, output = _eval(tmp_path, tiny_en, "--mode", "dense", "--embedding-model", ABSENT)
    assert code == 4 and "first-stage" not in output and ABSENT in output
