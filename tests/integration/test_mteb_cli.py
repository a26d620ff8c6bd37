"""``finesift mteb`` end to end on offline data: an embedder task, a reranking task, resume, errors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finesift.cli.app import app

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "beir" / "tiny-en"
needs_mteb = pytest.mark.skipif(
    importlib.util.find_spec("mteb") is None,
    reason="mteb is not installed (the mteb extra, not in [all,dev])",
)


def invoke(*args: str, home: Path):
    return CliRunner().invoke(app, ["--home", str(home), "mteb", *args], catch_exceptions=True)


@needs_mteb
def test_embedder_and_reranking_tasks_end_to_end_and_resumed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = invoke("fake", "--tasks", str(DATA), "--output", str(out), "--json", home=tmp_path)
    assert first.exit_code == 0, first.output
    [task] = json.loads(first.stdout)["tasks"]
    assert (task["task"], task["status"], task["type"]) == ("tiny-en", "ran", "Retrieval")
    assert 0.0 < task["main_score"] <= 1.0
    mteb_file = json.loads(Path(task["result_file"]).read_text("utf-8"))  # mteb's own result file
    assert mteb_file["scores"]["test"][0]["main_score"] == pytest.approx(task["main_score"], abs=1e-6)
    record = json.loads((out / "finesift").joinpath(*Path(task["result_file"]).parts[-3:]).read_text("utf-8"))
    assert record["instruction"]["source"] == "task-description"
    again = invoke("fake", "--tasks", str(DATA), "--output", str(out), "--json", home=tmp_path)
    assert json.loads(again.stdout)["tasks"][0]["status"] == "cached"
    reranked = invoke("fake", "--reranker", "fake", "--tasks", str(DATA), "--output", str(out), home=tmp_path)
    assert reranked.exit_code == 0, reranked.output
    assert "tiny-en  Retrieval" in reranked.stdout and "first stage: fake" in reranked.stderr


@needs_mteb
def test_unknown_task_is_a_one_line_error(tmp_path: Path) -> None:
    result = invoke("fake", "--tasks", "SciFactt", home=tmp_path)
    assert result.exit_code == 2
    assert "unknown mteb task 'SciFactt'" in result.output and "SciFact" in result.output


def test_without_mteb_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mteb", None)
    result = invoke("fake", "--tasks", "SciFact", home=tmp_path)
    assert result.exit_code == 3
    assert "finesift[mteb]" in result.output
