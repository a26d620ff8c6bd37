"""`finesift doctor` end to end on the tiny models: green rows, skips, a diagnosis, JSON, self-test."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from finesift.cli.app import app
from finesift.doctor import faults
from finesift.testing.http import ServerState, protocol_server

pytestmark = [pytest.mark.slow, pytest.mark.service]


def _doctor(home, *args: str):
    return CliRunner().invoke(app, ["--home", str(home), "doctor", *args])


def test_transformers_openai_and_remote_rerank_are_green(
    tiny_embedder, tiny_ollama_reranker_model, ollama_generator, tmp_path
) -> None:
    from finesift.rerank.transformers import TransformersReranker

    reranker = TransformersReranker(tiny_ollama_reranker_model, device="cpu", dtype="float32")
    state = ServerState(embedder=tiny_embedder.backend, reranker=reranker, generator=ollama_generator)
    with protocol_server(state) as (url, _):
        result = _doctor(
            tmp_path,
            "--embedding-model",
            str(tiny_embedder.backend.path),
            "--reranker-model",
            str(tiny_ollama_reranker_model),
            "--backends",
            "transformers,openai,ollama,nonesuch",
            "--device",
            "cpu",
            "--url",
            f"openai={url}",
            "--url",
            f"ollama={url}",
        )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = {
        (ln.split()[0], ln.split()[1]): ln.split()[2]
        for ln in lines
        if ln.split()[:1]
        and ln.split()[0] in ("transformers", "openai", "ollama", "nonesuch")
        and len(ln.split()) > 2
    }
    assert rows[("transformers", "embedding")] == "OK"
    assert rows[("openai", "embedding")] == "OK"
    assert rows[("openai", "reranker")] == "OK"
    assert rows[("ollama", "embedding")] == "OK"
    assert rows[("ollama", "reranker")] == "OK"
    assert rows[("nonesuch", "embedding")] == "SKIP"
    assert "Ollama has no rerank API" not in result.output
    assert "no embedding backend 'nonesuch' is registered" in result.output
    assert "all backends agree with the reference" in result.output
    assert "reference: model card (transformers float32)" in result.output
    assert "OMP_WAIT_POLICY=" in result.output  # the threads row


def test_a_deviating_backend_fails_with_its_diagnosis_and_json(tiny_embedder, tmp_path) -> None:
    state = ServerState(embedder=faults.MeanPoolingEmbedder(tiny_embedder.backend))
    with protocol_server(state) as (url, _):
        result = _doctor(
            tmp_path,
            "--embedding-model",
            str(tiny_embedder.backend.path),
            "--backends",
            "openai",
            "--device",
            "cpu",
            "--url",
            f"openai={url}",
            "--json",
        )
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["ok"] is False
    (row,) = report["rows"]
    assert (row["backend"], row["status"], row["diagnosis"]) == ("openai", "fail", "wrong_pooling")
    assert row["metrics"]["cos_min"] < 0.99


def test_sentence_transformers_is_checked_when_registered_and_skipped_otherwise(
    tiny_embedder, tmp_path
) -> None:
    from finesift.embedding.registry import BACKENDS

    result = _doctor(
        tmp_path,
        "--embedding-model",
        str(tiny_embedder.backend.path),
        "--backends",
        "sentence-transformers",
        "--device",
        "cpu",
    )
    if "sentence-transformers" in BACKENDS:
        # The row must be green against the model card, and the run must pass: a failing row fails this.
        assert result.exit_code == 0, result.output
        (row,) = [ln.split() for ln in result.output.splitlines() if ln.startswith("sentence-transformers")]
        assert row[1:3] == ["embedding", "OK"], result.output
        assert "reference: model card (transformers float32)" in result.output
    else:
        assert result.exit_code == 0
        assert "no embedding backend 'sentence-transformers' is registered" in result.output


def test_bad_options_are_one_line_errors(tmp_path) -> None:
    result = _doctor(tmp_path, "--embedding-model", "fake", "--url", "openai")
    assert result.exit_code != 0
    # The app itself prints finesift's errors as one line (it used to leave that to main()).
    assert "NAME=VALUE" in result.output and len(result.output.strip().splitlines()) == 1


def test_self_test_with_a_reference_and_without(tiny_embedder, tiny_reranker) -> None:
    from finesift import Settings
    from finesift.doctor import self_test

    settings = Settings(
        embedding={"model": str(tiny_embedder.backend.path)},
        reranker={"model": str(tiny_reranker.backend.path)},
    )
    report = self_test(settings, embedder=tiny_embedder, reranker=tiny_reranker)
    assert report.ok and [r.status for r in report.rows] == ["ok", "ok"]
    assert report.reference == "model card (transformers float32)"
    assert report.rows[0].metrics.cos_min == pytest.approx(1.0, abs=1e-5)

    from finesift import load_embedder, load_reranker

    fake = Settings(embedding={"model": "fake"}, reranker={"model": "fake"})
    report = self_test(fake, embedder=load_embedder("fake"), reranker=load_reranker("fake"))
    assert report.ok
    assert all("sanity checks only" in (r.message or "") for r in report.rows)


def test_llamacpp_is_skipped_before_any_conversion_when_absent(tiny_embedder, tmp_path, monkeypatch) -> None:
    import sys

    from finesift import Settings
    from finesift.doctor import DoctorOptions, run_doctor

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    settings = Settings(home=tmp_path, embedding={"model": str(tiny_embedder.backend.path)})
    report = run_doctor(settings, DoctorOptions(backends=("llamacpp",), device="cpu"), rerank=False)
    (row,) = report.rows
    assert row.status == "skip" and "finesift[llamacpp]" in (row.message or "")
    assert report.ok
    assert not (tmp_path / "cache").exists()
