"""``finesift index`` over a folder with hostile files: each is skipped with its reason and counted,
the rest is indexed (issue 17, item 1)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cli_support import run_cli

from finesift.testing.hostile import empty_style_docx, nested_html, shared_stream_pdf

pytest.importorskip("lancedb")


run = run_cli


@pytest.mark.slow
def test_index_skips_hostile_files_and_indexes_the_rest(monkeypatch, capsys, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Backups\n\nBackups run nightly at 02:00.", "utf-8")
    (docs / "shared.pdf").write_bytes(shared_stream_pdf())
    (docs / "slow.pdf").write_bytes(shared_stream_pdf(pages=2, stream_bytes=8_000_000))
    (docs / "deep.html").write_bytes(nested_html(20_000))
    (docs / "empty.docx").write_bytes(empty_style_docx())
    (docs / "long.txt").write_text("word " * 20_000, "utf-8")
    monkeypatch.setenv("FINESIFT_KB__MAX_PAGES", "10")
    monkeypatch.setenv("FINESIFT_KB__MAX_CHARS", "50000")
    monkeypatch.setenv("FINESIFT_KB__PARSE_TIMEOUT_S", "2")
    home = str(tmp_path / "home")
    args = ["--home", home, "index", str(docs), "--kb", "h", "--embedding-model", "fake"]
    started = time.perf_counter()
    code, out, err = run(monkeypatch, capsys, *args, "--reranker-model", "none", "--json")
    assert time.perf_counter() - started < 60
    assert code == 0, err
    report = json.loads(out)
    assert report["documents_added"] == 2 and report["documents_failed"] == 4
    reasons = {Path(f["source"]).name: f["reason"] for f in report["failures"]}
    assert "kb.max_pages" in reasons["shared.pdf"]
    assert "kb.parse_timeout_s" in reasons["slow.pdf"]
    assert "kb.max_chars" in reasons["long.txt"]
    assert "no text" in reasons["empty.docx"]
    code, out, err = run(monkeypatch, capsys, "--home", home, "index", str(docs), "--kb", "h")
    assert code == 0 and "skipped:" in err and "FINESIFT_KB__MAX_PAGES" in err
