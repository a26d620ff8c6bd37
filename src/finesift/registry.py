"""Backends by name: ``name -> "module:function"`` plus the pip extra, imported only when chosen."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from finesift.errors import InvalidRequest, MissingDependency


@dataclass(frozen=True)
class Entry:
    """Where a backend's factory lives and which extra installs what it needs."""

    target: str
    extra: str | None = None


def load_factory(kind: str, name: str, table: Mapping[str, Entry]) -> Callable[..., Any]:
    """Import the factory registered as ``name``; unknown names list the valid ones."""
    entry = table.get(name)
    if entry is None:
        raise InvalidRequest(f"unknown {kind} backend {name!r}; choose one of {', '.join(sorted(table))}")
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module_name
        raise MissingDependency(
            missing, entry.extra or name, f"needed by the {name!r} {kind} backend"
        ) from exc
    factory: Callable[..., Any] = getattr(module, attr)
    return factory
