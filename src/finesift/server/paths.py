"""Server-side paths confined to the configured roots (``server.index_roots``).

A client names files or folders to index; the server reads them only if, after every symlink is
resolved, they lie inside one of the roots. ``..`` components, NUL bytes, paths outside the roots
and anything that is not a regular file or folder (devices, FIFOs, sockets) are refused. Folders are
walked without following symlinked folders; a file whose link leads outside the roots, a link in a
loop and a folder that cannot be read are skipped and reported.
Error messages echo only what the client sent, never a server path.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from finesift.errors import Forbidden, InvalidRequest
from finesift.kb.indexing import Collected, source_name, source_path, walk_files
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
    candidate = source_path(raw) if os.path.isabs(raw) else roots[0] / source_path(raw)
    try:
        real = _resolve(candidate)
    except OSError as exc:  # a symlink loop: only its own path can be checked
        if not _inside(Path(os.path.abspath(candidate)), roots):
            raise Forbidden(f"{raw!r} is outside the server's index roots") from exc
        raise InvalidRequest(f"{raw!r}: cannot be read ({exc.strerror})") from exc
    # Containment is checked before existence, so the answer says nothing about files outside.
    if not _inside(real, roots):
        raise Forbidden(f"{raw!r} is outside the server's index roots")
    try:
        mode = real.stat().st_mode
    except OSError as exc:
        what = f"cannot be read ({exc.strerror})" if exc.errno == errno.ELOOP else "no such file or folder"
        raise InvalidRequest(f"{raw!r}: {what} under the index roots") from exc
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise Forbidden(f"{raw!r} is not a regular file or folder")
    return real


def _resolve(path: Path) -> Path:
    """``path`` with every symlink resolved; a loop raises ``OSError(ELOOP)`` (Python 3.11 raises
    ``RuntimeError`` instead)."""
    try:
        return path.resolve()
    except RuntimeError as exc:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from exc


def collect(paths: Sequence[Path], roots: Sequence[Path]) -> Collected:
    """Regular files under the already confined ``paths``; symlinks leading outside, links in a loop
    and folders that cannot be read are skipped and listed."""
    out = Collected()
    seen: set[Path] = set()
    for path in paths:
        entries = [path] if path.is_file() else walk_files(path, out.skipped)
        for entry in entries:
            real, reason = _check(entry, roots)
            if real is None:
                out.skipped.append(Failure(source_name(entry), f"{source_name(entry.name)}: {reason}"))
            elif real not in seen:
                seen.add(real)
                out.files.append(real)
    out.files.sort()
    return out


def _check(entry: Path, roots: Sequence[Path]) -> tuple[Path | None, str]:
    """``(real path, "")`` for a regular file inside ``roots``, else ``(None, why it is skipped)``."""
    try:
        real = _resolve(entry)
        if not _inside(real, roots):
            return None, "links outside the index roots; skipped"
        mode = real.stat().st_mode
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or 'broken link?'}); skipped"
    return (real, "") if stat.S_ISREG(mode) else (None, "not a regular file; skipped")
