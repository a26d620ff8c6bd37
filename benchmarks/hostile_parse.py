"""Parse time and outcome of each hostile document of issue 17 under the default caps; prints JSON.

Each file is built in memory (``finesift.testing.hostile``) and parsed the way ``finesift index`` and
the upload route parse it (``parser_for(KBSettings())``: caps, worker processes, time and memory
limits), after one warm-up parse so a worker's start-up is not counted. The outcome is the number
of characters extracted, or the cap that refused the file.

``--old-src DIR`` also runs the same files through another checkout's loaders (e.g. the code before
this change: ``--old-src /path/to/main/src``), each in a subprocess stopped after ``--old-limit-s``
seconds, so the script stays bounded (under two minutes with the defaults)::

    PYTHONPATH=src python benchmarks/hostile_parse.py --old-src ../main/src
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finesift.errors import FinesiftError
from finesift.ingest.workers import close_pools, parser_for
from finesift.settings import KBSettings
from finesift.testing.hostile import empty_style_docx, nested_html, shared_stream_pdf

FILES: dict[str, Callable[[], bytes]] = {
    "empty_style_20k.docx": lambda: empty_style_docx(20_000),
    "nested_20k.html": lambda: nested_html(20_000),
    "nested_100k.html": lambda: nested_html(100_000),
    "shared_stream_50p.pdf": lambda: shared_stream_pdf(50, 2_000_000),
}
_CAP = re.compile(r"\(cap ([a-z_.]+);")
_OLD = """
import sys, time
from finesift.ingest.loaders import load_bytes
data = open(sys.argv[1], "rb").read()
started = time.perf_counter()
try:
    outcome = f"parsed: {len(load_bytes(data, sys.argv[2]).text)} characters"
except Exception as exc:
    outcome = f"refused: {type(exc).__name__}: {str(exc)[:120]}"
print(round(time.perf_counter() - started, 2), outcome)
"""


def ours(data: bytes, name: str, settings: KBSettings) -> dict[str, Any]:
    parse = parser_for(settings)
    started = time.perf_counter()
    try:
        document = parse(data, name)
        outcome: dict[str, Any] = {"outcome": "parsed", "chars": len(document.text)}
    except FinesiftError as exc:
        cap = _CAP.search(str(exc))
        outcome = {"outcome": "refused", "cap": cap.group(1) if cap else None, "error": type(exc).__name__}
        outcome["message"] = str(exc)
    return {"seconds": round(time.perf_counter() - started, 2), **outcome}


def old(data: bytes, name: str, src: str, limit_s: float) -> dict[str, Any]:
    """The other checkout's ``load_bytes`` in a subprocess, stopped after ``limit_s`` seconds."""
    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix) as file:
        file.write(data)
        file.flush()
        env = {**os.environ, "PYTHONPATH": src}
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-c", _OLD, file.name, name],
                env=env, capture_output=True, text=True, timeout=limit_s, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"seconds": None, "outcome": f"still parsing after {limit_s:g} s (stopped)"}
        seconds, _, outcome = done.stdout.strip().partition(" ")
        if done.returncode or not seconds:
            return {"seconds": None, "outcome": "failed", "stderr": done.stderr[-300:]}
        return {
            "seconds": float(seconds),
            "outcome": outcome,
            "wall_s": round(time.perf_counter() - started, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-src", help="another checkout's src/ to compare with (subprocess)")
    parser.add_argument("--old-limit-s", type=float, default=15.0, help="seconds per file on the old code")
    args = parser.parse_args()
    settings = KBSettings()
    parser_for(settings)(b"<p>warm-up</p>", "warm.html")  # start a worker outside the timings
    results = []
    for name, build in FILES.items():
        data = build()
        row: dict[str, Any] = {"file": name, "bytes": len(data), "finesift": ours(data, name, settings)}
        if args.old_src:
            row["old"] = old(data, name, args.old_src, args.old_limit_s)
        results.append(row)
        print(json.dumps(row), file=sys.stderr)
    close_pools()
    limits = {k: v for k, v in settings.model_dump().items() if k.startswith(("max_", "parse_"))}
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "cpus": os.cpu_count(),
        "limits": limits,
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
