"""The CLI's documented exit codes 3 (missing dependency), 6 (store) and 8 (overloaded), end to end.

docs/reference/cli.md lists them; the others (2, 4, 5, 7) are covered where their errors arise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finesift.cli.app import app
from finesift.cli.errors import EXIT_CODES
from finesift.errors import MissingDependency, Overloaded, StoreError

runner = CliRunner()


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_the_table_matches_the_documented_codes() -> None:
    codes = dict(EXIT_CODES)
    assert (codes[MissingDependency], codes[StoreError], codes[Overloaded]) == (3, 6, 8)


def test_a_missing_extra_exits_3_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # not importable, even where it is installed
    args = ["--home", str(tmp_path), "--offline", "embed", "--model", "Qwen/Qwen3-Embedding-0.6B"]
    result = runner.invoke(app, [*args, "--backend", "vllm"], input="x\n")
    assert result.exit_code == 3, result.output
    assert "pip install 'finesift[vllm]'" in _one_line_error(result.output)


def test_an_unreachable_store_exits_6(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("hello", encoding="utf-8")
    args = ["--home", str(tmp_path / "home"), "index", str(docs), "--kb", "x"]
    args += [
        "--store",
        "postgresql://127.0.0.1:1/db",
        "--embedding-model",
        "fake",
        "--reranker-model",
        "fake",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 6, result.output
    assert "cannot create the pgvector tables" in _one_line_error(result.output)


def test_an_overloaded_backend_exits_8(monkeypatch: pytest.MonkeyPatch) -> None:
    # No CLI command queues work itself (the server does); a backend that reports overload is the path.
    from finesift.embedding.fake import FakeEmbedder

    def busy(self, texts):
        raise Overloaded("the queue is full; retry shortly")

    monkeypatch.setattr(FakeEmbedder, "embed", busy)
    result = runner.invoke(app, ["embed", "--model", "fake"], input="x\n")
    assert result.exit_code == 8, result.output
    assert "retry shortly" in _one_line_error(result.output)
