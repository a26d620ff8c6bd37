"""The command line shared by the scripts that generate a docs page: write it, or ``--check`` it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def page_main(page: Path, render: Callable[[], str], *, script: str, argv: list[str] | None = None) -> int:
    """Write ``page`` from ``render()``; with ``--check``, exit 1 when the committed page differs."""
    parser = argparse.ArgumentParser(description=f"Write {page.name} ({script}).")
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is out of date")
    args = parser.parse_args(argv)
    text = render()
    shown = f"{page.parent.name}/{page.name}"
    if args.check:
        current = page.read_text(encoding="utf-8") if page.exists() else ""
        if current != text:
            print(f"{shown} is out of date: run python {script}")
            return 1
        return 0
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    print(f"wrote {shown}")
    return 0
