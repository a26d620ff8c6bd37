"""Run the ``finesift`` CLI in process, as a user would from a shell with empty stdin."""

from __future__ import annotations

import io
import sys

import pytest

from finesift.cli.app import main


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """``finesift ARGS...``: its exit code, stdout and stderr; a traceback on stderr fails the test."""
    monkeypatch.setattr(sys, "argv", ["finesift", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
