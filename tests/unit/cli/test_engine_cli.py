"""`finesift embed` / `finesift rerank`: JSONL in, JSONL out, one-line errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from finesift.cli.app import app

runner = CliRunner()


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("embed", "rerank", "instructions"):
        assert command in result.output


def test_embed_lines_from_stdin_with_fake() -> None:
    result = runner.invoke(
        app, ["embed", "--model", "fake", "--query", "--dim", "32"], input="alpha\n\nbeta\n"
    )
    assert result.exit_code == 0, result.output
    rows = _jsonl(result.stdout)
    assert [(r["index"], r["line"]) for r in rows] == [(0, 1), (1, 3)]
    assert all(len(r["embedding"]) == 32 for r in rows)
    assert abs(np.linalg.norm(rows[0]["embedding"]) - 1) < 1e-5


def test_embed_jsonl_file_keeps_ids(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "one"}\n{"id": 7, "text": "二"}\n', encoding="utf-8")
    result = runner.invoke(app, ["embed", str(src), "--model", "fake"])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in _jsonl(result.stdout)] == ["a", 7]


def test_rerank_scores_in_input_order_and_top_n() -> None:
    docs = "index speeds lookups\nbananas are yellow\nan index is a data structure\n"
    result = runner.invoke(app, ["rerank", "-q", "what is an index", "--model", "fake"], input=docs)
    rows = _jsonl(result.stdout)
    assert [r["index"] for r in rows] == [0, 1, 2]
    top = _jsonl(
        runner.invoke(
            app, ["rerank", "-q", "what is an index", "--model", "fake", "--top-n", "1"], input=docs
        ).stdout
    )
    assert len(top) == 1 and top[0]["score"] == max(r["score"] for r in rows)


def test_embed_with_tiny_qwen3_matches_library(tiny_embedding_model: Path, tiny_embedder) -> None:
    result = runner.invoke(
        app,
        ["embed", "--model", str(tiny_embedding_model), "--dtype", "float32", "--device", "cpu", "--query"],
        input="how to sort\n",
    )
    assert result.exit_code == 0, result.output
    got = np.array(_jsonl(result.stdout)[0]["embedding"])
    np.testing.assert_allclose(got, tiny_embedder.embed_queries(["how to sort"])[0], atol=1e-5)


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["embed", "--model", "fake", "--dim", "7"], "x\n", 2, "dim 7 is out of range"),
        (
            ["embed", "--model", "fake", "--instruction", "nosuchtask", "--query"],
            "x\n",
            2,
            "unknown instruction",
        ),
        (["embed", "--model", "fake", "/no/such/file"], "", 2, "does not exist"),
        (["--offline", "embed", "--model", "Qwen/Not-A-Model"], "x\n", 4, "huggingface-cli download"),
        (["embed", "--model", "fake", "--input-format", "jsonl"], "{bad json\n", 2, "not valid JSON"),
        (["rerank", "-q", " ", "--model", "fake"], "doc\n", 2, "query must be a non-empty string"),
    ],
)
def test_errors_are_one_line_with_exit_code(args, stdin, code, message) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "finesift", *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in proc.stderr
