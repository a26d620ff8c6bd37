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


def test_self_test_at_start_up_passes_for_faithful_models(tiny_embedding_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from server_support import ready_client

    from finesift.server.app import create_app

    settings = Settings(
        home=tmp_path,
        embedding={"model": str(tiny_embedding_model), "dtype": "float32", "device": "cpu"},
        reranker={"model": "fake"},
        server={"self_test": True},
    )
    with ready_client(create_app(settings)) as client:
        assert client.get("/ready").json()["status"] == "ready"


def test_self_test_refuses_to_serve_a_wrongly_pooled_model(
    tiny_embedding_model: Path, tiny_embedder, tmp_path: Path
) -> None:
    pytest.importorskip("fastapi")
    from server_support import StaticServices
    from starlette.testclient import TestClient

    from finesift import load_reranker
    from finesift.doctor.faults import MeanPoolingEmbedder
    from finesift.embedding.embedder import Embedder
    from finesift.server.app import create_app

    settings = Settings(
        home=tmp_path,
        embedding={"model": str(tiny_embedding_model), "dtype": "float32", "device": "cpu"},
        reranker={"model": "fake"},
        server={"self_test": True},
    )
    services = StaticServices(Embedder(MeanPoolingEmbedder(tiny_embedder.backend)), load_reranker("fake"))
    app = create_app(settings, services)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        body = _wait_until_loaded(client)
    assert body["status"] == "failed"
    assert body["status"] == "failed"
    assert app.state.finesift.error is not None and "self-test failed" in str(app.state.finesift.error)
    assert "pooling" in str(app.state.finesift.error)


def _wait_until_loaded(client, timeout: float = 120.0) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while True:
        body = client.get("/ready").json()
        if body["status"] != "loading" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
