"""Which mteb tasks to run: task names, benchmark or task-set names, and local BEIR folders.

A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) becomes an mteb retrieval
task named after the folder, so the mteb protocol runs on data that needs no download.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finesift.errors import InvalidRequest
from finesift.eval.mteb import import_mteb
from finesift.eval.mteb_local import beir_task


def resolve_tasks(names: Sequence[str], benchmark: str | None, *, split: str = "test") -> list[Any]:
    """mteb task objects for ``names`` (task names or BEIR folders) plus those of ``benchmark``."""
    if not names and not benchmark:
        raise InvalidRequest("name the tasks: --tasks NAME[,NAME...] (or a BEIR folder) or --benchmark NAME")
    mteb = import_mteb()
    tasks = [beir_task(n, split=split) for n in names if _is_beir_folder(n)]
    wanted = [n for n in names if not _is_beir_folder(n)]
    if benchmark:
        wanted += [n for n in benchmark_tasks(benchmark) if n not in wanted]
    for name in wanted:
        try:
            tasks.append(mteb.get_task(name))
        except KeyError as exc:
            hint = str(exc.args[0] if exc.args else exc).removeprefix("KeyError: ")
            raise InvalidRequest(
                f'unknown mteb task {name!r} ({hint}); `python -c "import mteb; print(mteb.get_tasks())"` '
                f"lists them, and a local BEIR folder (corpus.jsonl, queries.jsonl, qrels/) works too"
            ) from exc
    return tasks


def task_sets() -> dict[str, tuple[str, ...]]:
    """finesift's named task sets (``finesift.eval.mteb_sets.TASK_SETS``); empty without that module."""
    try:
        from finesift.eval import mteb_sets  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return {}
    return dict(getattr(mteb_sets, "TASK_SETS", {}))


def benchmark_tasks(name: str) -> list[str]:
    """Task names of a finesift task set or an mteb benchmark (e.g. ``MTEB(eng, v2)``)."""
    sets = task_sets()
    if name in sets:
        return list(sets[name])
    mteb = import_mteb()
    try:
        bench = mteb.get_benchmark(name)
    except (KeyError, ValueError) as exc:
        choices = sorted(sets) + sorted(b.name for b in mteb.get_benchmarks())
        close = difflib.get_close_matches(name, choices, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise InvalidRequest(
            f"unknown benchmark {name!r}; {hint}finesift task sets: {', '.join(sorted(sets)) or 'none'}; "
            f'mteb benchmarks: `python -c "import mteb; print([b.name for b in mteb.get_benchmarks()])"`'
        ) from exc
    return [t.metadata.name for t in bench.tasks]


def _is_beir_folder(name: str) -> bool:
    path = Path(name)
    return path.is_dir() and (path / "corpus.jsonl").is_file()
