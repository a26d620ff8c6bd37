"""A normal command shows no library deprecation notices; -v logs them; the suite still errors on them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from finesift.cli.quiet import quiet_library_warnings


def test_notices_are_hidden_and_other_warnings_kept() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_library_warnings(["embed", "--model", "m"])
        warnings.warn("old keyword", FutureWarning, stacklevel=1)
        warnings.warn("old module", DeprecationWarning, stacklevel=1)
        warnings.warn("something odd", UserWarning, stacklevel=1)
    assert [type(w.message) for w in seen] == [UserWarning]


@pytest.mark.parametrize("flag", ["-v", "-vv", "--verbose"])
def test_verbose_logs_every_warning(flag: str, caplog: pytest.LogCaptureFixture) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            quiet_library_warnings([flag, "embed"])
            with caplog.at_level(logging.WARNING, logger="py.warnings"):
                warnings.warn("old keyword", FutureWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)
    assert "old keyword" in caplog.text


def test_commands_on_real_models_print_no_warnings(
    tiny_embedding_model: Path, tiny_reranker_model: Path, tmp_path: Path
) -> None:
    """The console entry point, as a user runs it, on the transformers engine of both models."""
    texts = tmp_path / "texts.txt"
    texts.write_text("hello world\n你好世界\ndef f(x): return x\n", encoding="utf-8")
    env = {**os.environ, "FINESIFT_HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "default"}
    runs = [
        ["embed", "--model", str(tiny_embedding_model), "--query", str(texts)],
        ["rerank", "--model", str(tiny_reranker_model), "--query", "hello", str(texts)],
    ]
    for args in runs:
        done = subprocess.run(
            [sys.executable, "-m", "finesift", *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr and "deprecated" not in done.stderr.lower(), done.stderr
        assert done.stdout.count("\n") == 3
