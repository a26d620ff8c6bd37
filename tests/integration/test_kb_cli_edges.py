"""``finesift index`` on awkward input (issue 22, items 1 and 9): a file name that is not UTF-8, a FIFO
named directly, an unreadable folder, a PDF that makes pypdf complain."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import run_cli

from finesift.testing.hostile import shared_stream_pdf

pytest.importorskip("lancedb")

FAKE = ("--embedding-model", "fake", "--reranker-model", "none")


def _index(monkeypatch, capsys, home: Path, *paths: Path, as_json: bool = True):  # type: ignore[no-untyped-def]
    args = ["--home", str(home), "index", *map(str, paths), "--kb", "k", *FAKE]
    code, out, err = run_cli(monkeypatch, capsys, *args, *(["--json"] if as_json else []))
    return code, (json.loads(out) if as_json and code == 0 else out), err


def test_a_file_name_that_is_not_utf8_is_indexed_escaped(monkeypatch, capsys, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("Backups run nightly.", encoding="utf-8")
    (docs / "caf\udce9.md").write_text("The café serves espresso.", encoding="utf-8")
    code, report, err = _index(monkeypatch, capsys, tmp_path / "home", docs)
    assert code == 0, err
    assert report["documents_added"] == 2 and report["documents_failed"] == 0
    code, out, err = _index(monkeypatch, capsys, tmp_path / "home", docs, as_json=False)
    assert code == 0 and "2 unchanged, 0 failed" in out, err
    code, out, err = run_cli(
        monkeypatch, capsys, "--home", str(tmp_path / "home"), "search", "espresso", "--kb", "k"
    )
    assert code == 0 and "caf\\xe9.md" in out, err


def test_a_fifo_named_directly_is_reported(monkeypatch, capsys, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "good.md").write_text("Backups run nightly.", encoding="utf-8")
    code, report, err = _index(
        monkeypatch, capsys, tmp_path / "home", tmp_path / "pipe", tmp_path / "good.md"
    )
    assert code == 0, err
    assert report["documents_added"] == 1 and report["documents_failed"] == 1
    assert "not a regular file" in report["failures"][0]["reason"]


def test_an_unreadable_folder_is_reported(monkeypatch, capsys, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "locked").mkdir(parents=True)
    (docs / "good.md").write_text("Backups run nightly.", encoding="utf-8")
    (docs / "locked" / "x.md").write_text("hidden", encoding="utf-8")
    scandir = os.scandir

    def refuse(path):  # type: ignore[no-untyped-def]  # chmod 000 does not stop root
        if os.fspath(path) == str(docs / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    code, report, err = _index(monkeypatch, capsys, tmp_path / "home", docs)
    assert code == 0, err
    assert report["documents_added"] == 1 and report["documents_failed"] == 1
    assert report["failures"] == [
        {
            "source": str(docs / "locked"),
            "reason": f"{docs / 'locked'}: cannot read the folder (Permission denied); skipped",
            "too_large": False,
        }
    ]


def _complaining_pdf(path: Path) -> Path:
    """A PDF with a wrong ``startxref`` offset: pypdf reads it, and logs warnings about it."""
    pdf = shared_stream_pdf(pages=1, stream_bytes=200)
    path.write_bytes(re.sub(rb"startxref\n(\d+)", lambda m: b"startxref\n%d" % (int(m.group(1)) + 7), pdf))
    return path


def test_pypdf_warnings_go_to_the_log_not_stderr(tmp_path: Path) -> None:
    """As a user runs it: PDFs parsed in worker processes (the default) and in the command's own."""
    pdf = _complaining_pdf(tmp_path / "bad.pdf")
    for workers in ("1", "0"):
        env = {**os.environ, "FINESIFT_KB__PARSE_WORKERS": workers}
        args = [sys.executable, "-m", "finesift", "--home", str(tmp_path / workers), "index", str(pdf)]
        done = subprocess.run(
            [*args, "--kb", "k", *FAKE], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0 and "1 added" in done.stdout, done.stderr
        assert "startxref" not in done.stderr, done.stderr


def test_pypdf_warnings_are_info_records(
    monkeypatch, capsys, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FINESIFT_KB__PARSE_WORKERS", "0")
    with caplog.at_level(logging.INFO):
        code, report, _ = _index(
            monkeypatch, capsys, tmp_path / "home", _complaining_pdf(tmp_path / "bad.pdf")
        )
    assert code == 0 and report["documents_added"] == 1
    # pytest hands pypdf's own records to caplog too (it attaches to non-propagating loggers)
    relayed = [r for r in caplog.records if r.name.startswith("finesift") and "startxref" in r.getMessage()]
    assert relayed and all(r.levelno == logging.INFO and "bad.pdf" in r.getMessage() for r in relayed)
    assert not logging.getLogger("pypdf").propagate  # so no handler of the command prints them
