"""The skip allow-list: strict mode turns a skip it does not allow into a failure naming test and reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skip_policy import allowed_skips, is_allowed

TESTS = Path(__file__).resolve().parents[1]
DOCS = TESTS.parent / "docs" / "development" / "skips.md"

PROBE = """
import pytest

pytestmark = []


def test_gpu_reason():
    pytest.skip("needs a CUDA device (torch.cuda.is_available() is False)")


def test_broken_install():
    pytest.importorskip("finesift_no_such_package")


def test_chromium():
    pytest.skip("Debian chromium is not installed (/usr/bin/chromium); apt-get install -y chromium")


@pytest.mark.gpu
def test_marked_gpu():
    pass
"""


def run_probe(
    tmp_path: Path, *, strict: bool, probe: str = PROBE, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "conftest.py").write_text(
        "from skip_policy import pytest_collection_modifyitems, pytest_make_collect_report, "
        "pytest_runtest_makereport\n",
        encoding="utf-8",
    )
    (tmp_path / "test_probe.py").write_text(probe, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    env["FINESIFT_STRICT_SKIPS"] = "1" if strict else "0"
    for name in ("CI", "FINESIFT_NO_SKIP"):
        env.pop(name, None)
    env.update(extra_env)
    args = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "gpu or not gpu"]
    args += ["-o", "markers=gpu: needs a CUDA device", str(tmp_path)]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_strict_mode_fails_a_skip_the_list_does_not_allow(tmp_path: Path) -> None:
    result = run_probe(tmp_path, strict=True)
    out = result.stdout
    assert result.returncode == 1, out
    assert "test_probe.py::test_broken_install: skipped for a reason that tests/skips.toml" in out
    assert "finesift_no_such_package" in out
    assert "test_probe.py::test_chromium: skipped" in out  # allowed outside CI only
    assert "2 failed" in out, out


def test_outside_strict_mode_every_skip_is_reported(tmp_path: Path) -> None:
    result = run_probe(tmp_path, strict=False)
    assert result.returncode == 0, result.stdout
    assert "failed" not in result.stdout and ("3 skipped" in result.stdout or "4 skipped" in result.stdout)


@pytest.mark.parametrize(
    ("reason", "strict", "allowed"),
    [
        ("needs a CUDA device (torch.cuda.is_available() is False)", True, True),
        ("could not import 'lancedb': No module named 'lancedb'", True, False),
        ("could not import 'lancedb': No module named 'lancedb'", False, True),
        ("could not import 'llama_cpp': No module named 'llama_cpp'", True, False),
        ("could not import 'llama_cpp': No module named 'llama_cpp'", False, True),
        ("needs the shared data folder (not in a user's clone): /x/shared/data/cosqa is absent", True, True),
        ("mteb is not installed (the mteb extra, not in [all,dev]: it pulls datasets)", True, True),
        ("sentence-transformers is not installed", True, False),
    ],
)
def test_reasons(reason: str, strict: bool, allowed: bool) -> None:
    assert is_allowed(reason, strict=strict) is allowed


SHARED = "needs the shared data folder (not in a user's clone): /x/shared/data/cosqa is absent"
MTEB = "mteb is not installed (the mteb extra, not in [all,dev]: it pulls datasets)"


@pytest.mark.parametrize(
    ("reason", "strict", "ci", "required", "allowed"),
    [
        (SHARED, True, True, frozenset(), False),  # CI must have the reference data
        (SHARED, False, True, frozenset(), False),  # in every CI set, strict or not
        (SHARED, True, False, frozenset(), True),  # a user's clone may lack it
        (MTEB, True, True, frozenset(), True),
        (MTEB, False, False, frozenset({"mteb"}), False),  # the CI step that installed mteb
        ("needs a CUDA device (torch.cuda.is_available() is False)", True, True, frozenset({"mteb"}), True),
        ("Debian chromium is not installed (/usr/bin/chromium)", False, True, frozenset(), True),
    ],
)
def test_ci_and_no_skip_forbid_entries(reason: str, strict: bool, ci: bool, required, allowed: bool) -> None:
    assert is_allowed(reason, strict=strict, ci=ci, required=required) is allowed


SHARED_PROBE = f"""
import pytest


def test_reference_numbers():
    pytest.skip({SHARED!r})


def test_mteb():
    pytest.skip({MTEB!r})
"""


def test_ci_fails_the_shared_data_skip_and_no_skip_the_named_one(tmp_path: Path) -> None:
    ci = run_probe(tmp_path / "ci", strict=True, probe=SHARED_PROBE, CI="true")
    assert ci.returncode == 1 and "1 failed, 1 skipped" in ci.stdout, ci.stdout
    assert "test_reference_numbers: skipped for a reason" in ci.stdout and "CI=true" in ci.stdout
    clone = run_probe(tmp_path / "clone", strict=False, probe=SHARED_PROBE, FINESIFT_NO_SKIP="mteb")
    assert clone.returncode == 1 and "1 failed, 1 skipped" in clone.stdout, clone.stdout
    assert "test_mteb: skipped for a reason" in clone.stdout


def test_every_entry_is_documented() -> None:
    page = DOCS.read_text(encoding="utf-8")
    for entry in allowed_skips():
        assert f"`{entry.name}`" in page, f"{entry.name} is not described in {DOCS.name}"
