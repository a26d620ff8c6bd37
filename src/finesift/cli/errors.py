"""The one mapping from the error tree to exit codes and one-line messages."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

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
from finesift.settings import describe

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


def one_line(error: BaseException | str) -> str:
    """``error: <message>`` on a single line."""
    return "error: " + " ".join(str(error).split())


#: click's usage errors. Typer vendors click (``typer._click``), so the base class is reached through
#: the public ``typer.BadParameter`` rather than ``import click``.
ClickError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def usage_line(error: Any) -> str:
    """click's usage error (a bad value, a missing or unknown option) as one line naming the option."""
    ctx = getattr(error, "ctx", None)
    text = error.format_message()
    missing = hasattr(error, "param_type")  # MissingParameter words its own message well
    if isinstance(error, typer.BadParameter) and not missing:
        hint: Any = error.param_hint
        if hint is None and error.param is not None:
            hint = [f"'{name}'" for name in getattr(error.param, "opts", None) or [error.param.name]]
        hint = " / ".join(hint) if isinstance(hint, Sequence) and not isinstance(hint, str) else hint
        text = f"invalid option {hint}: {error.message.removeprefix('Value error, ')}"
    if ctx is not None:
        text = f"{text.rstrip('.')} (see '{ctx.command_path} --help')"
    return one_line(text)


def _fail(line: str, code: int) -> NoReturn:
    typer.echo(line, err=True)
    sys.exit(code)


class OneLineErrors(TyperGroup):
    """The root command: every error ends as one ``error: ...`` line on stderr and its exit code.

    click's own usage errors (a value out of range, a bad choice, a missing option) would print a usage
    box, and pydantic's or finesift's errors a traceback; here all of them go through one mapping.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickError as exc:
            if not getattr(exc, "format_message", str)().strip():  # no_args_is_help: help already printed
                sys.exit(getattr(exc, "exit_code", 2))
            _fail(usage_line(exc), getattr(exc, "exit_code", 2))
        except typer.Abort:
            _fail("error: aborted", 1)
        except FinesiftError as exc:
            _fail(one_line(exc), exit_code(exc))
        except ValidationError as exc:
            _fail(one_line(InvalidRequest(f"invalid option {describe(exc)}")), exit_code(InvalidRequest()))
        sys.exit(code if isinstance(code, int) else 0)
