"""Shared CLI plumbing: global options, settings from flags, reading inputs, writing JSONL."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import typer

from finesift.errors import InvalidRequest
from finesift.settings import Settings, validated


@dataclass
class Context:
    """What the top-level callback collected; commands refine it into settings."""

    settings: Settings


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj.settings if isinstance(obj, Context) else Settings()


def with_role(settings: Settings, role: str, **flags: Any) -> Settings:
    """``settings`` with the given fields of section ``role`` replaced (``None`` flags are ignored).

    The section is validated again; a bad value raises a one-line InvalidRequest naming ``role.field``.
    """
    section = getattr(settings, role)
    changes = {k: v for k, v in flags.items() if v is not None}
    if not changes:
        return settings
    return settings.model_copy(
        update={role: validated(type(section), {**dict(section), **changes}, prefix=role)}
    )


def with_models(
    settings: Settings, *, embedding: Mapping[str, Any], reranker: Mapping[str, Any], **both: Any
) -> Settings:
    """``settings`` with both models' flags: ``embedding`` and ``reranker`` fields for one model each,
    ``both`` (the ``both_models`` options: dtype, device, ...) for each; ``None`` flags are ignored."""
    settings = with_role(settings, "embedding", **embedding, **both)
    return with_role(settings, "reranker", **reranker, **both)


def configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    quiet = ["transformers", "huggingface_hub", "urllib3", "httpx"]
    for name in quiet:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


@dataclass(frozen=True)
class InputText:
    """One text read from the input, with where it came from."""

    text: str
    line: int
    id: Any = None


def open_input(source: Path | None) -> TextIO:
    if source is None or str(source) == "-":
        return sys.stdin
    if not source.is_file():
        raise InvalidRequest(f"input file {str(source)!r} does not exist")
    return open(source, encoding="utf-8")


def read_texts(source: Path | None, fmt: str = "auto") -> list[InputText]:
    """Texts from a file or stdin: one per line, or JSONL objects with ``text`` (and optional ``id``).

    Blank lines are skipped; each text remembers its 1-based line number.
    """
    if fmt not in ("auto", "lines", "jsonl"):
        raise InvalidRequest(f"unknown input format {fmt!r}; choose auto, lines or jsonl")
    with open_input(source) as fh:
        rows = [(n, line.rstrip("\r\n")) for n, line in enumerate(fh, start=1)]
    rows = [(n, line) for n, line in rows if line.strip()]
    if fmt == "auto":
        fmt = "jsonl" if rows and all(line.lstrip().startswith("{") for _, line in rows) else "lines"
    if fmt == "lines":
        return [InputText(line, n) for n, line in rows]
    return [_parse_jsonl(n, line) for n, line in rows]


def _parse_jsonl(n: int, line: str) -> InputText:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise InvalidRequest(f"line {n} is not valid JSON: {exc}") from exc
    if isinstance(obj, str):
        return InputText(obj, n)
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise InvalidRequest(f'line {n}: each JSONL line must be an object with a string "text" field')
    return InputText(obj["text"], n, obj.get("id"))


def write_jsonl(records: Iterator[dict[str, Any]], out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    for record in records:
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    stream.flush()
