"""The skip allow-list (``tests/skips.toml``) and the pytest hooks that enforce it.

With ``FINESIFT_STRICT_SKIPS=1`` a skip whose reason matches no entry marked ``strict`` becomes a failure
that names the test and the reason, so a broken install (``pytest.importorskip`` on a package of
``[all,dev]``) or a missing service cannot turn into a green run. Two more switches, in any mode: with the
``CI`` environment variable set, an entry marked ``ci = false`` (the shared reference data) fails too, and
``FINESIFT_NO_SKIP=name,...`` fails the named entries (a CI step that installed what they need).
``tests/conftest.py`` imports the hooks.
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
NO_SKIP_ENV = "FINESIFT_NO_SKIP"
CI_ENV = "CI"


@dataclass(frozen=True)
class AllowedSkip:
    name: str
    reason: re.Pattern[str]
    strict: bool
    why: str
    #: False: not allowed where the ``CI`` environment variable is set, strict mode or not.
    ci: bool = True


@cache
def allowed_skips(path: Path = ALLOW_LIST) -> tuple[AllowedSkip, ...]:
    """The entries of the allow-list, in file order."""
    entries = tomllib.loads(path.read_text(encoding="utf-8"))["skip"]
    return tuple(
        AllowedSkip(e["name"], re.compile(e["reason"]), bool(e["strict"]), e["why"], bool(e.get("ci", True)))
        for e in entries
    )


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def strict_mode() -> bool:
    return _flag(STRICT_ENV)


def ci_mode() -> bool:
    return _flag(CI_ENV)


def no_skip() -> frozenset[str]:
    """The entries that ``FINESIFT_NO_SKIP`` forbids in this run."""
    return frozenset(n.strip() for n in os.environ.get(NO_SKIP_ENV, "").split(",") if n.strip())


def is_allowed(
    reason: str, *, strict: bool, ci: bool = False, required: frozenset[str] = frozenset()
) -> bool:
    """Whether a skip with this reason may show: never when an entry it matches is forbidden (``ci`` set and
    the entry says ``ci = false``, or named in ``required``); else always outside strict mode, and in
    strict mode only on a ``strict`` entry."""
    matching = [entry for entry in allowed_skips() if entry.reason.search(reason)]
    if any(entry.name in required or (ci and not entry.ci) for entry in matching):
        return False
    return not strict or any(entry.strict for entry in matching)


def skip_reason(longrepr: object) -> str:
    """The reason pytest records for a skip (its longrepr is ``(path, line, "Skipped: reason")``)."""
    message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return str(message).removeprefix("Skipped: ")


def _fail_unless_allowed(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    strict, ci, required = strict_mode(), ci_mode(), no_skip()
    if not (strict or ci or required):
        return
    reason = skip_reason(report.longrepr)
    if is_allowed(reason, strict=strict, ci=ci, required=required):
        return
    modes = [
        f"{name}={os.environ.get(name)}" for name in (STRICT_ENV, CI_ENV, NO_SKIP_ENV) if os.environ.get(name)
    ]
    report.outcome = "failed"
    report.longrepr = (
        f"{report.nodeid}: skipped for a reason that tests/skips.toml does not allow here "
        f"({', '.join(modes)}): {reason!r}. Install or provide what it needs, or add an entry that says why."
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
