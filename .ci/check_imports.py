"""Import every package that ``finesift[all,dev]`` installs; fail naming each one that cannot be imported.

A broken install must fail CI by name, not turn into skipped tests (``pytest.importorskip``) and a green run.
Distribution names are mapped to their top-level modules through the installed metadata.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

#: Top-level modules that are not meant to be imported on their own (build helpers, namespace stubs).
NOT_MODULES = {"_distutils_hack", "__editable__", "_virtualenv"}


def requirements(extras: list[str]) -> set[str]:
    """The distribution names that ``finesift[extras]`` asks for, following self-references."""
    project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups, names, todo = project["optional-dependencies"], set(), list(extras)
    seen: set[str] = set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in groups[extra]:
            name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0)  # type: ignore[union-attr]
            inner = re.search(r"\[([^\]]+)\]", spec)
            if name == "finesift" and inner:
                todo += [e.strip() for e in inner.group(1).split(",")]
            else:
                names.add(name)
    return names | {re.match(r"[A-Za-z0-9_.-]+", s).group(0) for s in project["dependencies"]}  # type: ignore[union-attr]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    wanted = {norm(n) for n in requirements(["all", "dev"])}
    modules: dict[str, list[str]] = {}
    for module, dists in md.packages_distributions().items():
        for dist in dists:
            modules.setdefault(norm(dist), []).append(module)
    failures = []
    for dist in sorted(wanted):
        tops = sorted(m for m in modules.get(dist, []) if m not in NOT_MODULES and m.isidentifier())
        if not tops:
            failures.append(f"{dist}: not installed (or it installs no importable module)")
            continue
        for module in tops:
            try:
                importlib.import_module(module)
            except Exception as exc:  # any failure to import is the finding
                failures.append(f"{dist}: import {module} failed: {type(exc).__name__}: {exc}")
    broken = {line.split(":", 1)[0] for line in failures}
    print(f"finesift[all,dev]: the modules of {len(wanted) - len(broken)} of {len(wanted)} packages import")
    for line in failures:
        print(f"  FAILED {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
