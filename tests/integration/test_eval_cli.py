"""``finesift eval`` end to end: JSON and table output, --compare, the cache, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finesift.cli.app import app

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "beir"


def invoke(*args: str, home: Path):
    return CliRunner().invoke(app, ["--home", str(home), "eval", *args], catch_exceptions=True)


def test_json_output_has_the_documented_keys(tmp_path: Path) -> None:
    result = invoke(str(DATA / "tiny-en"), "--embedding-model", "fake", "--json", home=tmp_path)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("ndcg@10", "recall@100", "mrr@10", "map@100", "queries", "docs", "mode", "seconds"):
        assert key in out
    assert (out["queries"], out["docs"], out["mode"], out["dropped_queries"]) == (7, 12, "dense", 1)
    assert list((tmp_path / "eval-cache").glob("document-*.npy"))


@pytest.mark.parametrize("mode", ["bm25", "hybrid", "rerank"])
def test_modes_print_a_readable_report(mode: str, tmp_path: Path) -> None:
    result = invoke(
        str(DATA / "tiny-en"),
        "--mode",
        mode,
        "--embedding-model",
        "fake",
        "--reranker-model",
        "fake",
        "--rerank-top",
        "5",
        home=tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.stdout and "MAP@100" in result.stdout and f"mode={mode}" in result.stdout


def test_compare_prints_one_table(tmp_path: Path) -> None:
    result = invoke(
        str(DATA / "tiny-en"),
        "--embedding-model",
        "fake",
        "--reranker-model",
        "fake",
        "--compare",
        "dim=32|48",
        "--compare",
        "mode=bm25|hybrid|rerank",
        home=tmp_path,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("configuration") and len(lines) == 2 + 6
    assert "index MB" in lines[0] and "dim=48" in result.stdout and "(cached)" in result.stdout


def test_compare_json_is_a_list_of_results(tmp_path: Path) -> None:
    result = invoke(
        str(DATA / "tiny-zh"),
        "--split",
        "dev",
        "--embedding-model",
        "fake",
        "--compare",
        "mode=bm25",
        "--json",
        home=tmp_path,
    )
    assert result.exit_code == 0, result.output
    modes = [r["mode"] for r in json.loads(result.stdout)["results"]]
    assert modes == ["dense", "bm25"]


def test_max_queries_samples(tmp_path: Path) -> None:
    result = invoke(
        str(DATA / "tiny-en"),
        "--embedding-model",
        "fake",
        "--max-queries",
        "3",
        "--json",
        "--no-cache",
        home=tmp_path,
    )
    assert json.loads(result.stdout)["queries"] == 3
    assert not (tmp_path / "eval-cache").exists()


def test_sentence_transformers_model_is_picked_automatically(tiny_st_model: Path, tmp_path: Path) -> None:
    result = invoke(
        str(DATA / "tiny-en"),
        "--embedding-model",
        str(tiny_st_model),
        "--device",
        "cpu",
        "--json",
        home=tmp_path,
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["queries"] == 7 and 0.0 <= out["ndcg@10"] <= 1.0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--split", "train"], 4, "available splits: dev, test"),
        (["--mode", "sparse"], 2, "choose one of dense, bm25, hybrid, rerank"),
        (["--compare", "colour=red"], 2, "unknown key"),
        (["--dim", "8"], 2, "out of range"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    args: list[str],
    code: int,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from finesift.cli.app import main

    argv = [
        "finesift",
        "--home",
        str(tmp_path),
        "eval",
        str(DATA / "tiny-en"),
        "--embedding-model",
        "fake",
        *args,
    ]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
