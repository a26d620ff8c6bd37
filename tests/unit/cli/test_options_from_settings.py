"""Options are declared once: every flag generated from a setting obeys its environment variable, and no
hand-written flag carries a default of its own for something a setting (or a run configuration) declares.

The settings a command would use are caught where every command builds them (``settings_of`` and
``with_role``); each command then stops early (an unknown KB, a missing folder, or a stubbed server).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
from pydantic import BaseModel, SecretStr
from typer.testing import CliRunner

from finesift.cli.app import app
from finesift.cli.options import field_of
from finesift.settings import Settings
from finesift.train.config import EmbeddingTrainConfig
from finesift.train.reranker import RerankerTrainConfig
from finesift.train.synth import SynthConfig

ENV = re.compile(r"Env (FINESIFT_\w+(?:, FINESIFT_\w+)*)\.")
#: The least each command needs to reach its settings (it fails afterwards: nothing exists).
ARGS: dict[str, list[str]] = {
    "embed": ["embed"],
    "rerank": ["rerank", "-q", "q"],
    "index": ["index", "{tmp}", "--kb", "k"],
    "search": ["search", "q", "--kb", "nope"],
    "ask": ["ask", "q", "--kb", "nope"],
    "serve": ["serve"],
    "eval": ["eval", "{tmp}/no-data"],
    "doctor": ["doctor"],
    "synth": ["synth", "--kb", "nope", "--out", "{tmp}/out"],
    "gguf report": ["gguf", "report", "{tmp}", "{tmp}/no-data"],
    "mteb": ["mteb", "--tasks", "{tmp}/no-such-task"],
}
#: Hand-written flags named like a setting that mean something else (their own defaults are theirs).
OTHER_MEANING = {
    ("eval", "mode"): "eval's pipeline (dense, bm25, hybrid or rerank), not search.mode",
    ("mteb", "batch_size"): "texts per batch mteb hands the encoder, not a remote backend's batch",
    ("doctor", "gguf_type"): "the type doctor converts a model to, not the quantization to pick from a hub",
}


def _commands() -> list[tuple[str, Any]]:
    def walk(command: Any, path: tuple[str, ...]) -> list[tuple[str, Any]]:
        if isinstance(command, typer.core.TyperGroup):
            return [leaf for name, sub in command.commands.items() for leaf in walk(sub, (*path, name))]
        return [(" ".join(path), command)]

    return walk(typer.main.get_command(app), ())


def _options(command: Any) -> list[Any]:
    return [p for p in command.params if isinstance(p, typer.core.TyperOption)]


def _generated() -> list[tuple[str, Any, tuple[str, ...]]]:
    """(command, option, settings paths) of every flag generated from a setting."""
    found = []
    for name, command in _commands():
        for option in _options(command):
            match = ENV.search(option.help or "")
            if match:
                paths = tuple(
                    var.removeprefix("FINESIFT_").replace("__", ".").lower() for var in match[1].split(", ")
                )
                found.append((name, option, paths))
    return found


GENERATED = _generated()


def _value(path: str) -> Any:
    """A valid value of the setting at ``path`` that differs from its default."""
    if path == "kb.store":
        return "postgresql://user@db.invalid/kb"  # stores are checked by name
    field = field_of(path)
    default = field.get_default(call_default_factory=True)
    annotation = field.annotation
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kind = next(a for a in typing.get_args(annotation) if a is not type(None)) if union else annotation
    if typing.get_origin(kind) is typing.Literal:
        return next(choice for choice in typing.get_args(kind) if choice != default)
    if kind is bool:
        return not default
    if kind is int:
        low = next((getattr(m, "ge", None) for m in field.metadata if getattr(m, "ge", None) is not None), 1)
        return low + 1 if low + 1 != default else low + 2
    if kind is float:
        return 0.5 if default != 0.5 else 0.25
    if kind is Path:
        return Path("/tmp/finesift-option-test")
    if typing.get_origin(kind) is tuple:
        return ("x-test",)
    return "x-test"


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return '["' + '","'.join(map(str, value)) + '"]'
    return str(value)


def _flag_args(option: Any, value: Any) -> list[str] | None:
    if isinstance(value, bool):
        names = option.opts if value else option.secondary_opts
        return [names[0]] if names else None
    return [option.opts[0], str(value[0] if isinstance(value, tuple) else value)]


def _read(settings: Settings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    return value


def _expected(value: Any) -> Any:
    return tuple(map(str, value)) if isinstance(value, tuple) else value


@pytest.fixture
def caught(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Every Settings a command builds, in order; the server and the doctor stop before any work."""
    import finesift.cli.common as common

    seen: list[Settings] = []

    def record(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            seen.append(result)
            return result

        return wrapper

    originals = {name: getattr(common, name) for name in ("settings_of", "with_role")}
    for module in [m for name, m in sys.modules.items() if name.startswith("finesift.cli.")]:
        for name, original in originals.items():
            if getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, record(original))
    monkeypatch.setattr("finesift.cli.serve.run_server", lambda settings: None)
    monkeypatch.setattr("finesift.cli.doctor.run_doctor", _stop)
    monkeypatch.setattr("finesift.kb.knowledge_base.open_or_create", _record_choices)
    _CHOICES.clear()
    return seen


_CHOICES: list[dict[str, Any]] = []


def _record_choices(name: str, *, settings: Settings, choices: dict[str, Any]) -> Any:
    """``index`` passes a new KB's chunking and store as choices (the settings are their defaults)."""
    _CHOICES.append(choices)
    raise typer.Exit(9)


def _stop(*args: Any, **kwargs: Any) -> Any:
    raise typer.Exit(9)


def _invoke(command: str, extra: list[str], tmp_path: Path) -> str:
    args = [a.replace("{tmp}", str(tmp_path)) for a in ARGS[command]]
    return CliRunner().invoke(app, [*args, *extra], input="x\n").output


def _baseline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake models and no hub, so that no command loads or downloads a real model."""
    monkeypatch.setenv("FINESIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FINESIFT_HUB__OFFLINE", "true")
    monkeypatch.setenv("FINESIFT_EMBEDDING__MODEL", "fake")
    monkeypatch.setenv("FINESIFT_RERANKER__MODEL", "fake")


def test_every_command_with_generated_flags_is_exercised() -> None:
    assert {command for command, _, _ in GENERATED} == set(ARGS)


COMMANDS = sorted(ARGS)


def _of(command: str) -> list[tuple[Any, tuple[str, ...], Any]]:
    """The generated options of ``command`` with their paths and a test value."""
    return [(option, paths, _value(paths[0])) for name, option, paths in GENERATED if name == command]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_environment_variables_take_effect(
    command: str, caught: list[Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """All of a command's variables at once (one run per command keeps this cheap)."""
    _baseline(monkeypatch, tmp_path)
    options = _of(command)
    for option, paths, value in options:
        assert option.default in (None, False), f"{option.opts[0]} has its own default {option.default!r}"
        for path in paths:
            monkeypatch.setenv("FINESIFT_" + path.upper().replace(".", "__"), _env_text(value))
    output = _invoke(command, [], tmp_path)
    assert caught, f"{command} built no settings: {output}"
    for _, paths, value in options:
        for path in paths:
            assert _read(caught[-1], path) == _expected(value), f"{path} from the environment: {output}"


@pytest.mark.parametrize("command", COMMANDS)
def test_the_flags_set_the_settings_their_help_names(
    command: str, caught: list[Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _baseline(monkeypatch, tmp_path)
    options = [(o, paths, value, _flag_args(o, value)) for o, paths, value in _of(command)]
    output = _invoke(command, [arg for *_, flag in options for arg in flag or []], tmp_path)
    assert caught, f"{command} built no settings: {output}"
    for option, paths, value, flag in options:
        for path in paths if flag else ():  # a flag that only switches on is covered by the env test
            if path.startswith("kb.") and command == "index":  # a new KB's choices (settings: defaults)
                assert _CHOICES and _CHOICES[-1][option.name] == _expected(value), output
                continue
            assert _read(caught[-1], path) == _expected(value), f"{option.opts[0]} -> {path}: {output}"


def _settings_fields() -> dict[str, list[str]]:
    """Field name -> the settings paths declaring it."""
    fields: dict[str, list[str]] = {}
    for section, declared in Settings.model_fields.items():
        model = declared.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name in model.model_fields:
                fields.setdefault(name, []).append(f"{section}.{name}")
        else:
            fields.setdefault(section, []).append(section)
    return fields


def test_no_hand_written_flag_duplicates_a_settings_default() -> None:
    fields = _settings_fields()
    duplicates = [
        f"{command} {option.opts[0]} (default {option.default!r}; a setting: {fields[option.name]})"
        for command, cli in _commands()
        for option in _options(cli)
        if not ENV.search(option.help or "")
        and option.name in fields
        and option.default not in (None, False)
        and (command, option.name) not in OTHER_MEANING
    ]
    assert not duplicates, "flags with their own default for a setting:\n" + "\n".join(duplicates)


@pytest.mark.parametrize(
    ("command", "config"),
    [
        ("train embedding", EmbeddingTrainConfig),
        ("train reranker", RerankerTrainConfig),
        ("synth", SynthConfig),
    ],
)
def test_run_configuration_defaults_are_declared_once(command: str, config: type) -> None:
    """A train or synth flag takes its default from the run's dataclass, and its help shows it."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    cli = dict(_commands())[command]
    checked = 0
    for option in _options(cli):
        # --progress defaults to whether stderr is a terminal, not to the dataclass's value
        if option.name in defaults and option.name != "progress" and not ENV.search(option.help or ""):
            assert option.default is None, f"{command} {option.opts[0]} repeats a default"
            default = defaults[option.name]
            if default not in (None, dataclasses.MISSING) and not isinstance(default, tuple):
                assert "Default " in (option.help or ""), f"{command} {option.opts[0]} hides its default"
            checked += 1
    assert checked >= 8


def test_synth_temperature_comes_from_the_environment(
    caught: list[Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The chat model writing queries samples at synth.temperature (FINESIFT_SYNTH__TEMPERATURE)."""
    _baseline(monkeypatch, tmp_path)
    monkeypatch.setenv("FINESIFT_SYNTH__TEMPERATURE", "0.3")
    CliRunner().invoke(app, ["synth", "--kb", "nope", "--out", str(tmp_path / "o")])
    assert caught[-1].llm.temperature == 0.3


def test_both_models_flags_build_both_sections_once() -> None:
    """eval and mteb build both models' settings through one helper: per-model flags go to their model,
    the ``both_models`` flags to each, ``None`` flags leave the settings alone."""
    from finesift.cli.common import with_models
    from finesift.errors import InvalidRequest

    base = Settings()
    both = with_models(
        base, embedding={"model": "e", "max_length": 512}, reranker={"model": None}, device="cpu", dtype=None
    )
    assert (both.embedding.model, both.embedding.max_length) == ("e", 512)
    assert both.reranker.model == base.reranker.model and both.reranker.dtype == base.reranker.dtype
    assert both.embedding.device == both.reranker.device == "cpu"
    with pytest.raises(InvalidRequest, match=r"reranker\.max_length"):
        with_models(base, embedding={}, reranker={"max_length": 1})
