"""Every command, one invalid value per option type: one ``error:`` line naming the option, no traceback.

Also: the flags are generated from the settings (one declaration for help, choices, range and name).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from finesift.cli.app import app
from finesift.server.kb_schemas import SearchRequest
from finesift.settings import ModelSettings, SearchSettings

# (args, expected exit code, text the one line must contain: the option, or the bad path's name)
CASES: list[tuple[list[str], int, str]] = [
    (["embed", "--model", "fake", "--dtype", "float8"], 2, "'--dtype'"),  # bad choice
    (["embed", "--model", "fake", "--max-length", "3"], 2, "'--max-length'"),  # int out of range
    (["embed", "--model", "fake", "--dim", "x"], 2, "'--dim'"),  # not an int
    (["embed", "--model", "fake", "/no/such/input.txt"], 2, "/no/such/input.txt"),  # bad path
    (["embed", "--model", "fake", "--on-overflow", "drop"], 2, "'--on-overflow'"),
    (["rerank", "-q", "x", "--model", "fake", "--top-n", "0"], 2, "'--top-n'"),
    (["rerank", "--model", "fake"], 2, "'--query'"),  # missing required option
    (["instructions", "--bogus"], 2, "--bogus"),  # unknown option
    (["index", "/no/such/folder", "--kb", "k"], 2, "/no/such/folder"),
    (["index", ".", "--kb", "k", "--workers", "0"], 2, "'--workers'"),
    (["index", ".", "--kb", "k", "--chunk-size", "8"], 2, "'--chunk-size'"),
    (["search", "q", "--kb", "k", "--mode", "fuzzy"], 2, "'--mode'"),
    (["search", "q", "--kb", "k", "--threshold", "abc"], 2, "'--threshold'"),  # not a float
    (["search", "q", "--kb", "k", "--top-k", "0"], 2, "'--top-k'"),
    (["search", "q", "--kb", "k", "--dense-weight", "-1"], 2, "'--dense-weight'"),  # float below range
    (["search", "q", "--kb", "k", "--threshold", "nan"], 2, "search.threshold"),  # pydantic's check
    (["search", "q", "--kb", "k", "--dense-weight", "0", "--bm25-weight", "0"], 2, "bm25_weight"),
    (["ask", "q", "--kb", "k", "--threshold", "2"], 2, "'--threshold'"),
    (["ask", "q", "--kb", "k", "--context-tokens", "10"], 2, "'--context-tokens'"),
    (["serve", "--port", "70000"], 2, "'--port'"),
    (["serve", "--dtype", "float8"], 2, "'--dtype'"),
    (["serve", "--max-length", "many"], 2, "'--max-length'"),
    (["eval", "/no/such/beir"], 4, "/no/such/beir"),
    (["eval", "data", "--rerank-top", "0"], 2, "'--rerank-top'"),
    (["doctor", "--min-cosine", "high"], 2, "'--min-cosine'"),
    (["gguf", "report", ".", ".", "--dims", "wide"], 2, "--dims"),
    (["quickstart", "--query"], 2, "'--query'"),  # option without its value
    (["kb", "list", "--json", "--bogus"], 2, "--bogus"),
    (["kb", "info"], 2, "'name'"),  # missing argument
    (["kb", "delete-doc", "k"], 2, "'doc_ids'"),
    (["kb", "drop", "nope", "--yes"], 4, "'nope'"),
    (["kb", "migrate", "k"], 2, "'--to'"),
    (["gguf", "convert", "model", "out.gguf", "--kind", "tokenizer"], 2, "--kind"),
    (["--hub", "nope", "kb", "list"], 2, "'--hub'"),
    (
        ["synth", "--kb", "k", "--llm-url", "u", "--llm-model", "m", "--out", "o", "--per-chunk", "x"],
        2,
        "'--per-chunk'",
    ),
    (["train", "embedding", "data", "--model", "m", "--out", "o", "--epochs", "x"], 2, "'--epochs'"),
    (["train", "reranker", "data", "--model", "m", "--out", "o", "--lr", "abc"], 2, "'--lr'"),
    (["merge", "a", "b", "--out", "o", "--t", "half"], 2, "'--t'"),
    (["train", "recipe", "--config", "/no/such/recipe.toml"], 4, "/no/such/recipe.toml"),
    (["mteb", "--tasks", "x", "--rerank-top", "0"], 2, "'--rerank-top'"),
]


@pytest.mark.parametrize(("args", "code", "names"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_invalid_values_are_one_line_naming_the_option(
    args: list[str], code: int, names: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), *args], input="x\n")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert names in lines[0]
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # handled, not an escaped error


def test_every_command_is_covered() -> None:
    def leaves(group: object, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for name, command in getattr(group, "commands", {}).items():
            found |= leaves(command, (*path, name)) or {(*path, name)}
        return found

    def invoked(args: list[str]) -> tuple[str, ...]:
        group, path = typer.main.get_command(app), ()
        for arg in args:
            if arg in getattr(group, "commands", {}):
                group, path = group.commands[arg], (*path, arg)  # type: ignore[attr-defined]
        return path

    assert leaves(typer.main.get_command(app)) == {invoked(args) for args, _, _ in CASES}


def test_a_bad_environment_variable_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--home", str(tmp_path), "kb", "list"], env={"FINESIFT_SEARCH__TOP_K": "0"}
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert "FINESIFT_* setting search.top_k" in result.output


def test_help_comes_from_the_settings() -> None:
    result = CliRunner().invoke(app, ["embed", "--help"], env={"COLUMNS": "400"})
    dtype = ModelSettings.model_fields["dtype"]
    assert dtype.description and dtype.description[1:] in result.output
    assert "auto|float32|bfloat16|float16" in result.output
    assert "FINESIFT_EMBEDDING__DTYPE" in result.output
    serve = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "400"}).output
    assert "FINESIFT_EMBEDDING__DTYPE, FINESIFT_RERANKER__DTYPE" in serve


def test_search_options_have_one_name_everywhere() -> None:
    """Each SearchSettings field is a `finesift search` flag and a search request field of the same name."""
    search = typer.main.get_command(app).commands["search"]  # type: ignore[attr-defined]
    flags = {opt for param in search.params for opt in param.opts + param.secondary_opts}
    for name in SearchSettings.model_fields:
        assert f"--{name.replace('_', '-')}" in flags, name
        assert name in SearchRequest.model_fields, name
        assert (
            f"FINESIFT_SEARCH__{name.upper()}"
            in CliRunner().invoke(app, ["search", "--help"], env={"COLUMNS": "400"}).output
        )
