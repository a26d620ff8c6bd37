"""Server-side paths confined to the configured roots (``server.index_roots``).

A client names files or folders to index; the server reads them only if, after every symlink is
resolved, they lie inside one of the roots. ``..`` components, NUL bytes, paths outside the roots
and anything that is not a regular file or folder (devices, FIFOs, sockets) are refused. Folders are
walked without following symlinked folders; a file whose link leads outside the roots is skipped.
Error messages echo only what the client sent, never a server path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from finesift.errors import Forbidden, InvalidRequest
from finesift.types import Failure

MAX_PATH_CHARS = 4096


def resolve_roots(roots: Sequence[Path]) -> tuple[Path, ...]:
    """The roots, absolute and with symlinks resolved (so containment compares real paths)."""
    return tuple(Path(r).expanduser().resolve() for r in roots)


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def confine(raw: object, roots: Sequence[Path]) -> Path:
    """The real path of ``raw`` (absolute, or relative to the first root) if it lies inside ``roots``.

    Raises :class:`Forbidden` when it does not (or when no roots are configured) and
    :class:`InvalidRequest` for malformed or missing paths.
    """
    if not roots:
        raise Forbidden(
            "indexing server-side paths is off; start the server with --index-root DIR "
            "(or FINESIFT_SERVER__INDEX_ROOTS), or upload the files instead"
        )
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequest("a path is empty; name a file or folder under the server's index roots")
    if "\x00" in raw or len(raw) > MAX_PATH_CHARS:
        raise InvalidRequest("a path contains a NUL byte or is too long")
    if ".." in PurePosixPath(raw).parts:
        raise Forbidden(f"{raw!r}: '..' is not allowed in paths; name the file or folder directly")
    candidate = Path(raw) if os.path.isabs(raw) else roots[0] / raw
    real = candidate.resolve()
    # Containment is checked before existence, so the answer says nothing about files outside.
    if not _inside(real, roots):
        raise Forbidden(f"{raw!r} is outside the server's index roots")
    try:
        mode = real.stat().st_mode
    except OSError as exc:
        raise InvalidRequest(f"{raw!r}: no such file or folder under the index roots") from exc
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise Forbidden(f"{raw!r} is not a regular file or folder")
    return real


@dataclass
class Collected:
    """Files to index (real paths inside the roots) and entries skipped, with reasons."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in ("__pycache__", "node_modules")


def collect(paths: Sequence[Path], roots: Sequence[Path]) -> Collected:
    """Regular files under the already confined ``paths``; symlinks leading outside are skipped."""
    out = Collected()
    seen: set[Path] = set()
    for path in paths:
        entries = [path] if path.is_file() else _walk(path)
        for entry in entries:
            real = entry.resolve()
            reason = _refusal(real, roots)
            if reason is not None:
                out.skipped.append(Failure(str(entry), f"{entry.name}: {reason}"))
            elif real not in seen:
                seen.add(real)
                out.files.append(real)
    out.files.sort()
    return out


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        found.extend(Path(root) / name for name in sorted(files) if not _hidden(name))
    return found


def _refusal(real: Path, roots: Sequence[Path]) -> str | None:
    if not _inside(real, roots):
        return "links outside the index roots; skipped"
    try:
        mode = real.stat().st_mode
    except OSError:
        return "cannot be read (broken link?); skipped"
    return None if stat.S_ISREG(mode) else "not a regular file; skipped"
