"""CLI options generated from the settings' declarations.

A flag that sets a settings field takes its help, its range and its environment variable from the field
(``finesift.settings``), so they are written once; choices come from the field's ``Literal`` type, which
the command's annotation names (``Dtype``, ``SearchMode`` ...). The flags users type are unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from finesift.settings import Settings


def field_of(path: str) -> FieldInfo:
    """The declaration of ``section.field`` (or a top-level ``field``) in :class:`Settings`."""
    *sections, name = path.split(".")
    model: type[BaseModel] = Settings
    for section in sections:
        annotation = model.model_fields[section].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise TypeError(f"{section!r} in {path!r} is not a settings section")
        model = annotation
    return model.model_fields[name]


def env_var(path: str) -> str:
    """The environment variable of ``path``: ``embedding.dtype`` -> ``FINESIFT_EMBEDDING__DTYPE``."""
    return "FINESIFT_" + path.replace(".", "__").upper()


def help_of(*paths: str, note: str = "") -> str:
    """The first path's description as a sentence, ``note`` appended, then its default and env var(s)."""
    field = field_of(paths[0])
    text = field.description or ""
    text = text[:1].upper() + text[1:] + (f" ({note})" if note else "")
    default = _shown_default(field)
    return f"{text}. {f'Default {default}. ' if default else ''}Env {', '.join(env_var(p) for p in paths)}."


def bounds(field: FieldInfo) -> dict[str, Any]:
    """Typer's ``min``/``max`` from ``ge``/``le`` (``gt``/``lt`` of integers); pydantic checks the rest."""
    integer = field.annotation in (int, int | None)
    if not integer and field.annotation not in (float, float | None):
        return {}
    limits: dict[str, Any] = {}
    for rule in field.metadata:
        ge, gt, le, lt = (getattr(rule, name, None) for name in ("ge", "gt", "le", "lt"))
        if ge is not None:
            limits["min"] = ge
        elif integer and gt is not None:
            limits["min"] = gt + 1
        if le is not None:
            limits["max"] = le
        elif integer and lt is not None:
            limits["max"] = lt - 1
    return limits


def _shown_default(field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=False)
    if default is None or field.default_factory is not None or isinstance(default, tuple):
        return ""
    return _shown(default)


def setting(*decls: str, path: str, note: str = "", help: str | None = None, **kwargs: Any) -> Any:
    """A typer option for the settings field at ``path`` (``"search.top_k"``): help, range, default, env.

    ``decls`` are the flag names as users type them (none: typer derives them from the parameter name).
    The option's value is ``None`` unless given, so the settings (file, env, default) decide otherwise.
    """
    options = {"help": help or help_of(path, note=note), "show_default": False, **bounds(field_of(path))}
    make: Any = typer.Option  # typer takes the first positional as a flag name inside Annotated
    return make(*decls, **options, **kwargs)


def both_models(*decls: str, name: str, **kwargs: Any) -> Any:
    """A typer option for ``embedding.<name>`` and ``reranker.<name>`` at once (kb, serve, eval)."""
    paths = (f"embedding.{name}", f"reranker.{name}")
    return setting(*decls, path=paths[0], help=help_of(*paths, note="both models"), **kwargs)


def config_option(config: type, name: str, *decls: str, help: str, **kwargs: Any) -> Any:
    """A typer option for field ``name`` of the dataclass ``config`` (a train or synth run's settings).

    The option's value is ``None`` unless given (pass the given ones with :func:`given`), so the dataclass
    declares the default once; the help shows it.
    """
    default = config_default(config, name)
    switch = next((d.split("/") for d in decls if "/" in d), None)
    text = switch[0 if default else 1] if switch and isinstance(default, bool) else _shown(default)
    shown = "" if default is None else f" Default {text}."
    make: Any = typer.Option
    return make(*decls, help=f"{help}{shown}", show_default=False, **kwargs)


def config_default(config: type, name: str) -> Any:
    """The declared default of dataclass field ``name`` (``None`` when it has none)."""
    for item in dataclasses.fields(config):
        if item.name == name:
            return None if item.default is dataclasses.MISSING else item.default
    raise TypeError(f"{config.__name__} has no field {name!r}")


def given(**values: Any) -> dict[str, Any]:
    """The options that were given (not ``None``): the rest keep the config's or the settings' defaults."""
    return {name: value for name, value in values.items() if value is not None}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)
