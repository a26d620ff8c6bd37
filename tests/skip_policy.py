"""The skip allow-list (``tests/skips.toml``) and the pytest hooks that enforce it.

With ``FINESIFT_STRICT_SKIPS=1`` a skip whose reason matches no entry marked ``strict`` becomes a failure
that names the test and the reason, so a broken install (``pytest.importorskip`` on a package of
``[all,dev]``) or a missing service cannot turn into a green run. ``tests/conftest.py`` imports the hooks.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ALLOW_LIST = Path(__file__).with_name("skips.toml")
STRICT_ENV = "FINESIFT_STRICT_SKIPS"


@dataclass(frozen=True)
class AllowedSkip:
    name: str
    reason: re.Pattern[str]
    strict: bool
    why: str


@cache
def allowed_skips(path: Path = ALLOW_LIST) -> tuple[AllowedSkip, ...]:
    """The entries of the allow-list, in file order."""
    entries = tomllib.loads(path.read_text(encoding="utf-8"))["skip"]
    return tuple(
        AllowedSkip(e["name"], re.compile(e["reason"]), bool(e["strict"]), e["why"]) for e in entries
    )


def strict_mode() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def is_allowed(reason: str, *, strict: bool) -> bool:
    """Whether a skip with this reason may show: always outside strict mode, else only on a strict entry."""
    if not strict:
        return True
    return any(entry.strict and entry.reason.search(reason) for entry in allowed_skips())


def skip_reason(longrepr: object) -> str:
    """The reason pytest records for a skip (its longrepr is ``(path, line, "Skipped: reason")``)."""
    message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return str(message).removeprefix("Skipped: ")


def _fail_unless_allowed(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or not strict_mode() or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report.longrepr)
    if is_allowed(reason, strict=True):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{report.nodeid}: skipped for a reason that tests/skips.toml does not allow in strict mode "
        f"({STRICT_ENV}=1): {reason!r}. Install what it needs, or add an entry that says why."
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    _fail_unless_allowed(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    _fail_unless_allowed(report)
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``gpu``-marked tests, and only those, where torch sees no CUDA device."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    why = _no_cuda()
    if why:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=f"needs a CUDA device ({why})"))


def _no_cuda() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "torch.cuda.is_available() is False"
