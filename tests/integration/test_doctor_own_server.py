"""`finesift doctor` proves finesift's own server right: openai (embeddings) and remote (rerank) rows
against a live `finesift serve` of the tiny Qwen3 models agree with transformers fp32."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_support import live_server, wait_ready

from finesift.doctor.run import DoctorOptions, run_doctor
from finesift.settings import Settings

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_doctor_is_green_against_a_live_finesift_server(
    tiny_embedding_model: Path, tiny_reranker_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("fastapi")
    from finesift.server.app import create_app

    model = {"dtype": "float32", "device": "cpu"}
    settings = Settings(
        home=tmp_path,
        embedding={"model": str(tiny_embedding_model), **model},
        reranker={"model": str(tiny_reranker_model), **model},
    )
    app = create_app(settings)
    with live_server(app) as (url, _):
        wait_ready(app, timeout=120)
        options = DoctorOptions(
            backends=("transformers", "sentence-transformers", "openai"), urls={"openai": url}, device="cpu"
        )
        report = run_doctor(settings, options)
    table = report.table()
    assert report.ok, table
    statuses = {(row.backend, row.role): row.status for row in report.rows}
    assert statuses[("openai", "embedding")] == "ok", table
    assert statuses[("openai", "reranker")] == "ok", table
    assert statuses[("transformers", "embedding")] == "ok", table
