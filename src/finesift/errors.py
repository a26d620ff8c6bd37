"""The finesift exception tree.

::

    FinesiftError
     ├─ InvalidRequest        bad input: empty text, too many inputs, dim out of range
     │   ├─ Forbidden         not permitted: a server-side path outside the allowed roots
     │   └─ TooLarge          over a configured cap: characters, pages, chunks, tokens, parse time or memory
     ├─ NotFound              knowledge base, document, model
     ├─ Conflict              incompatible fingerprint, already exists
     ├─ Overloaded            queue full
     │   └─ DeadlineExceeded  the request did not finish within its deadline
     ├─ BackendError          model or remote service failed
     │   └─ MissingDependency names the pip extra to install
     └─ StoreError            store unavailable, corrupt, or vectors incompatible

Domain errors carry no HTTP concepts: ``server/errors.py`` maps them to status codes and
``cli`` to exit codes, each in one table.
"""

from __future__ import annotations


class FinesiftError(Exception):
    """Base of every error finesift raises on purpose."""


class InvalidRequest(FinesiftError):
    """The caller's input is wrong; the message says what is allowed."""


class Forbidden(InvalidRequest):
    """The request asks for something this configuration does not permit (a path outside the roots)."""


class TooLarge(InvalidRequest):
    """The input is over a configured cap (characters, pages, chunks, tokens, parse time or memory).

    The message names the cap and the setting that raises it.
    """


class NotFound(FinesiftError):
    """A named thing (model, knowledge base, document) does not exist."""


class Conflict(FinesiftError):
    """The request contradicts existing state (fingerprint mismatch, name taken)."""


class Overloaded(FinesiftError):
    """Too much work is queued; retry later."""


class DeadlineExceeded(Overloaded):
    """The work did not finish within its deadline (the server is too busy); retry later."""


class BackendError(FinesiftError):
    """A model runtime or a remote service failed."""


class MissingDependency(BackendError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str, detail: str = "") -> None:
        self.package = package
        self.extra = extra
        hint = f"pip install 'finesift[{extra}]'"
        msg = f"{package} is not installed; install it with: {hint}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class StoreError(FinesiftError):
    """The vector store is unavailable, corrupt, or holds incompatible vectors."""
