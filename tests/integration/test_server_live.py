"""A live uvicorn server on 127.0.0.1: the official OpenAI client, a bounded flood, graceful shutdown."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from server_support import fake_settings, free_port, live_server, slow_services, wait_ready

from finesift import load_embedder
from finesift.server.app import create_app

pytestmark = pytest.mark.service
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def server():
    app = create_app(fake_settings(api_key="test-key"))
    with live_server(app) as (url, _):
        wait_ready(app)
        yield url


def test_openai_client_float_and_base64(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0)
    texts = ["hello world", "你好，世界", "def add(a, b): return a + b"]
    expected = load_embedder("fake").embed_documents(texts)
    default = client.embeddings.create(model="fake:64", input=texts)  # the SDK asks for base64
    floats = client.embeddings.create(model="fake:64", input=texts, encoding_format="float")
    for response in (default, floats):
        got = np.array([d.embedding for d in response.data], dtype=np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert response.usage.prompt_tokens > 0 and response.model == "fake:64"
    query = client.embeddings.create(
        model="fake:64", input="add numbers", dimensions=32, extra_body={"input_type": "query"}
    )
    np.testing.assert_allclose(
        query.data[0].embedding, load_embedder("fake").embed_queries(["add numbers"], dim=32)[0], atol=1e-6
    )


def test_openai_client_errors(server):
    openai = pytest.importorskip("openai")
    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.embeddings.create(model="fake:64", input="x")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError, match="out of range"):
        client.embeddings.create(model="fake:64", input="x", dimensions=4096)
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert [m.id for m in client.models.list()] == ["fake:64", "fake:64:query", "fake"]


def test_rerank_over_http(server):
    headers = {"Authorization": "Bearer test-key"}
    body = {
        "model": "fake",
        "query": "capital of China",
        "documents": ["gravity", "Beijing, capital of China"],
    }
    v2 = httpx.post(f"{server}/v2/rerank", json=body, headers=headers).json()
    assert [r["index"] for r in v2["results"]] == [1, 0]
    jina = httpx.post(f"{server}/v1/rerank", json={**body, "return_documents": True}, headers=headers).json()
    assert jina["results"][0]["document"] == {"text": "Beijing, capital of China"}


def test_flood_gets_only_200_and_429_then_recovers():
    settings = fake_settings(queue_size=2, max_batch_items=1, retry_after=2)
    app = create_app(settings, slow_services(delay=0.05))
    with live_server(app) as (url, _):
        wait_ready(app)

        def one(i: int) -> httpx.Response:
            return httpx.post(f"{url}/v1/embeddings", json={"input": [f"text {i}"]}, timeout=30)

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            responses = list(pool.map(one, range(48)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}, statuses
        assert statuses.count(429) > 0 and statuses.count(200) >= 2
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.headers["retry-after"] == "2"
        assert refused.json()["error"]["code"] == "overloaded"
        assert one(0).status_code == 200, "the server recovers after the flood"
        metrics = httpx.get(f"{url}/metrics").text
        assert 'finesift_requests_total{method="POST",route="/v1/embeddings",status="429"}' in metrics


def test_graceful_shutdown_finishes_in_flight_requests():
    app = create_app(fake_settings(), slow_services(delay=0.3))
    state = app.state.finesift
    results: list[int] = []
    with live_server(app) as (url, server):
        wait_ready(app)

        def call(i: int) -> None:
            r = httpx.post(f"{url}/v1/embeddings", json={"input": [f"text {i}"] * 3}, timeout=30)
            results.append(r.status_code)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while state.embeddings.queue.depth < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        server.should_exit = True  # what SIGTERM does
        for t in threads:
            t.join(30)
    assert results == [200, 200, 200, 200]
    assert state.phase == "draining"


def _serve(*args: str, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "finesift", "serve", "--port", str(port), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_serve_answers_and_stops_on_sigterm():
    port = free_port()
    proc = _serve("--embedding-model", "fake", "--reranker-model", "fake", port=port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
            time.sleep(0.1)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={"input": "hi"})
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    # uvicorn re-raises the signal it caught once shutdown is complete.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err


def test_cli_serve_refuses_public_bind_without_key():
    proc = _serve(
        "--host", "0.0.0.0", "--embedding-model", "fake", "--reranker-model", "fake", port=free_port()
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [err.strip()]
    assert "refusing to bind 0.0.0.0" in err and "--api-key" in err


def test_cli_serve_stops_with_the_load_error():
    proc = _serve("--embedding-model", "no-such-model", "--reranker-model", "fake", port=free_port())
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    assert err.strip().splitlines()[-1].startswith("error: model 'no-such-model'")


def test_cli_serve_embeddings_only_under_a_served_name():
    port = free_port()
    proc = _serve(
        "--embedding-model", "fake", "--reranker-model", "none", "--served-model-name", "embed", port=port
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
            time.sleep(0.1)
        assert [m["id"] for m in httpx.get(f"{base}/v1/models").json()["data"]] == ["embed", "embed:query"]
        assert httpx.post(f"{base}/v1/embeddings", json={"input": "hi", "model": "embed"}).status_code == 200
        refused = httpx.post(f"{base}/v1/rerank", json={"query": "q", "documents": ["a"]})
        assert refused.status_code == 404 and "serves no reranker" in refused.json()["error"]["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
