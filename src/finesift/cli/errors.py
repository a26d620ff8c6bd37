"""The one mapping from the error tree to exit codes and one-line messages."""

from __future__ import annotations

from finesift.errors import (
    BackendError,
    Conflict,
    FinesiftError,
    InvalidRequest,
    MissingDependency,
    NotFound,
    Overloaded,
    StoreError,
)

# Most specific first: the first matching class decides.
EXIT_CODES: list[tuple[type[FinesiftError], int]] = [
    (InvalidRequest, 2),
    (MissingDependency, 3),
    (NotFound, 4),
    (BackendError, 5),
    (StoreError, 6),
    (Conflict, 7),
    (Overloaded, 8),
    (FinesiftError, 1),
]


def exit_code(error: FinesiftError) -> int:
    """The process exit code for ``error``."""
    return next(code for cls, code in EXIT_CODES if isinstance(error, cls))


def one_line(error: BaseException) -> str:
    """``error: <message>`` on a single line."""
    return "error: " + " ".join(str(error).split())
