"""The HTTP API over ASGI with the fake models: shapes, and every 4xx at its limit and one past."""

from __future__ import annotations

import base64
import threading

import numpy as np
import pytest
from server_support import StaticServices, fake_settings, post_json, ready_client

from finesift import load_embedder
from finesift.embedding.embedder import Embedder
from finesift.embedding.fake import FakeEmbedder
from finesift.rerank.base import Reranker
from finesift.rerank.fake import FakeReranker
from finesift.server.app import create_app


@pytest.fixture(scope="module")
def client():
    with ready_client(create_app(fake_settings(max_inputs=8, max_documents=5, max_request_tokens=40))) as c:
        yield c


def assert_error(response, status: int, code: str | None = None, words: str = "") -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"message", "type", "code"} <= set(error)
    assert "\n" not in error["message"] and "Traceback" not in error["message"]
    if code:
        assert error["code"] == code
    assert words.lower() in error["message"].lower()
    return error


# ---- shapes -----------------------------------------------------------------------------------


def test_embeddings_openai_shape_and_values():
    expected = load_embedder("fake")
    with ready_client(create_app(fake_settings())) as c:
        r = post_json(c, "/v1/embeddings", {"input": ["hello world", "你好世界"], "model": "fake:64"})
        assert r.status_code == 200
        body = r.json()
        assert body["object"] == "list" and body["model"] == "fake:64"
        assert [d["index"] for d in body["data"]] == [0, 1]
        assert all(d["object"] == "embedding" for d in body["data"])
        got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
        np.testing.assert_allclose(got, expected.embed_documents(["hello world", "你好世界"]), atol=1e-6)
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


def test_embeddings_single_string_query_instruction_and_dimensions(client):
    expected = load_embedder("fake").embed_queries(["find code"], instruction="code_search", dim=32)
    r = post_json(
        client,
        "/v1/embeddings",
        {
            "input": "find code",
            "input_type": "query",
            "instruction": "code_search",
            "dimensions": 32,
        },
    )
    assert r.status_code == 200
    vector = np.array(r.json()["data"][0]["embedding"], dtype=np.float32)
    assert vector.shape == (32,)
    np.testing.assert_allclose(vector, expected[0], atol=1e-6)


def test_embeddings_base64_is_little_endian_float32(client):
    floats = post_json(client, "/v1/embeddings", {"input": ["a b c"]}).json()["data"][0]["embedding"]
    r = post_json(client, "/v1/embeddings", {"input": ["a b c"], "encoding_format": "base64"})
    decoded = np.frombuffer(base64.b64decode(r.json()["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, np.array(floats, dtype=np.float32))


def test_rerank_cohere_v1_and_jina_shapes(client):
    docs = ["Beijing is the capital of China", {"text": "gravity bends light", "id": "d2"}, "China capital"]
    r = post_json(
        client,
        "/v1/rerank",
        {
            "model": "fake",
            "query": "capital of China",
            "documents": docs,
            "top_n": 2,
            "return_documents": True,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "fake" and body["id"] and body["usage"]["total_tokens"] > 0
    assert body["meta"] == {"api_version": {"version": "1"}, "billed_units": {"search_units": 1}}
    results = body["results"]
    assert len(results) == 2
    assert [x["relevance_score"] for x in results] == sorted(
        (x["relevance_score"] for x in results), reverse=True
    )
    scores = (
        FakeReranker()
        .score("capital of China", [d if isinstance(d, str) else d["text"] for d in docs], instruction="x")
        .scores
    )
    assert [x["index"] for x in results] == sorted(range(3), key=lambda i: -scores[i])[:2]
    for x in results:
        assert x["document"]["text"] in {d if isinstance(d, str) else d["text"] for d in docs}


def test_rerank_returns_every_document_without_text_by_default(client):
    r = post_json(client, "/v1/rerank", {"query": "q words", "documents": ["a", "q", "words q"]})
    results = r.json()["results"]
    assert sorted(x["index"] for x in results) == [0, 1, 2]
    assert all("document" not in x for x in results)


def test_rerank_object_documents_keep_their_fields(client):
    r = post_json(
        client,
        "/v1/rerank",
        {
            "query": "q",
            "documents": [{"text": "q", "id": 7, "title": "t"}],
            "return_documents": True,
        },
    )
    assert r.json()["results"][0]["document"] == {"text": "q", "id": 7, "title": "t"}


def test_rerank_v2_is_cohere_v2(client):
    r = post_json(
        client,
        "/v2/rerank",
        {
            "model": "fake",
            "query": "capital",
            "documents": ["x", "capital"],
            "top_n": 1,
            "max_tokens_per_doc": 4096,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "results", "meta"}
    # The score the library gives the same pair (the fake reranker the server runs), not the body's own.
    from finesift import load_reranker

    expected = load_reranker("fake").score("capital", ["x", "capital"])
    assert expected[1] > expected[0]
    assert body["results"] == [{"index": 1, "relevance_score": pytest.approx(expected[1], abs=1e-6)}]
    assert body["meta"]["api_version"] == {"version": "2"}


def test_models_health_ready_metrics(client):
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert [(m["id"], m["task"]) for m in models["data"]] == [
        ("fake:64", "embedding"),
        ("fake:64:query", "embedding-query"),
        ("fake", "rerank"),
    ]
    assert models["data"][0]["dimension"] == 64
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ready"
    post_json(client, "/v1/embeddings", {"input": "x y"})
    text = client.get("/metrics").text
    for name in (
        "finesift_requests_total",
        "finesift_request_seconds",
        "finesift_stage_seconds",
        "finesift_tokens_total",
        "finesift_queue_depth",
        "finesift_batch_size",
    ):
        assert name in text
    assert 'finesift_requests_total{method="POST",route="/v1/embeddings",status="200"}' in text
    assert 'finesift_queue_depth{model="embedding"} 0.0' in text
    assert 'finesift_batch_size_count{model="embedding"}' in text
    assert 'stage="queue"' in text and 'stage="model"' in text and 'stage="prepare"' in text


# ---- limits: at the limit accepted, one past rejected ------------------------------------------


def test_inputs_per_request_limit(client):
    assert post_json(client, "/v1/embeddings", {"input": ["a"] * 8}).status_code == 200
    assert_error(
        post_json(client, "/v1/embeddings", {"input": ["a"] * 9}), 422, "invalid_request", "too many inputs"
    )


def test_default_inputs_limit_is_openais_2048():
    with ready_client(create_app(fake_settings())) as c:
        assert post_json(c, "/v1/embeddings", {"input": ["a"] * 2048}).status_code == 200
        assert_error(post_json(c, "/v1/embeddings", {"input": ["a"] * 2049}), 422, words="at most 2048")


def test_tokens_per_input_limit_and_explicit_truncation():
    # The refusal by default comes from the model's policy (embedding.on_overflow="error").
    embedder = Embedder(FakeEmbedder(max_length=16), on_overflow="error")
    services = StaticServices(embedder, Reranker(FakeReranker()))
    with ready_client(create_app(fake_settings(), services)) as c:
        fits, over = " ".join(["wo"] * 15), " ".join(["wo"] * 16)  # fake tokens: words + 1
        assert post_json(c, "/v1/embeddings", {"input": [fits]}).status_code == 200
        assert_error(
            post_json(c, "/v1/embeddings", {"input": [fits, over]}), 422, words="input[1] has 17 tokens"
        )
        r = post_json(c, "/v1/embeddings", {"input": [fits, over], "truncate": True})
        assert r.status_code == 200
        assert r.headers["x-finesift-truncated"] == "1"
        assert r.json()["usage"]["prompt_tokens"] == 32


def test_tokens_per_request_limit(client):
    text = " ".join(["wo"] * 9)  # 10 tokens each; the client allows 40 per request
    assert post_json(client, "/v1/embeddings", {"input": [text] * 4}).status_code == 200
    assert_error(post_json(client, "/v1/embeddings", {"input": [text] * 4 + ["?"]}), 422, words="41 tokens")


def test_rerank_documents_limit(client):
    assert post_json(client, "/v1/rerank", {"query": "q", "documents": ["d"] * 5}).status_code == 200
    assert_error(
        post_json(client, "/v1/rerank", {"query": "q", "documents": ["d"] * 6}),
        422,
        words="too many documents",
    )
    assert_error(
        post_json(client, "/v2/rerank", {"model": "fake", "query": "q", "documents": ["d"] * 6}), 422
    )


def test_default_documents_limit_is_1000():
    with ready_client(create_app(fake_settings())) as c:
        assert post_json(c, "/v1/rerank", {"query": "q", "documents": ["d"] * 1000}).status_code == 200
        assert_error(
            post_json(c, "/v1/rerank", {"query": "q", "documents": ["d"] * 1001}), 422, words="at most 1000"
        )


@pytest.mark.parametrize(("top_n", "status"), [(1, 200), (5, 200), (0, 422), (-1, 422), (6, 422)])
def test_top_n_range(client, top_n, status):
    r = post_json(client, "/v1/rerank", {"query": "q", "documents": ["d", "q"], "top_n": top_n})
    assert r.status_code == status, r.text
    if status == 200:
        assert len(r.json()["results"]) == min(top_n, 2)
    else:
        assert_error(r, 422, words="top_n")


@pytest.mark.parametrize(("dimensions", "status"), [(32, 200), (64, 200), (31, 422), (65, 422), (0, 422)])
def test_dimensions_range(client, dimensions, status):
    r = post_json(client, "/v1/embeddings", {"input": "x", "dimensions": dimensions})
    assert r.status_code == status, r.text
    if status == 200:
        assert len(r.json()["data"][0]["embedding"]) == dimensions


def test_body_size_limit():
    limit = 4096
    with ready_client(create_app(fake_settings(max_body_bytes=limit))) as c:

        def body_of(size: int) -> bytes:
            head, tail = b'{"input": "', b'"}'
            return head + b"a" * (size - len(head) - len(tail)) + tail

        headers = {"content-type": "application/json"}
        assert c.post("/v1/embeddings", content=body_of(limit), headers=headers).status_code == 200
        assert_error(
            c.post("/v1/embeddings", content=body_of(limit + 1), headers=headers), 413, "body_too_large"
        )

        def chunks():  # no Content-Length: the limit applies while streaming
            yield body_of(limit + 1)

        assert_error(c.post("/v1/embeddings", content=chunks(), headers=headers), 413)


# ---- malformed and invalid requests ------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{bad", b"", b"\xff\xfe", b'{"input": "a"'])
def test_malformed_json_is_400(client, raw):
    r = client.post("/v1/embeddings", content=raw, headers={"content-type": "application/json"})
    if raw == b"":
        assert_error(r, 422, "validation_error", "json body")
    else:
        assert_error(r, 400)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"input": []}, "at least 1 item"),
        ({"input": [""]}, "input[0] is empty"),
        ({"input": ["ok", "   "]}, "input[1] is empty"),
        ({"input": 5}, "input"),
        ({"input": [1, 2, 3]}, "token ids"),
        ({"input": [[1, 2]]}, "token ids"),
        ({"input": ["a", None]}, "input[1]"),
        ({"input": "x", "dimensions": "32"}, "dimensions"),
        ({"input": "x", "dimensions": 32.0}, "dimensions"),
        ({"input": "x", "encoding_format": "binary"}, "encoding_format"),
        ({"input": "x", "input_type": "passage"}, "input_type"),
        ({"input": "x", "instruction": "retrieve code"}, "applies to queries"),
        ({"input": "x", "input_type": "query", "instruction": "codesearch"}, "unknown instruction name"),
        ({"input": "a\ud800b"}, "lone surrogate"),
        ({"input": ["ok", "nul\x00"]}, "input[1]: text contains a NUL"),
        ({"nothing": 1}, "input: field required"),
        ([1, 2], "input"),
    ],
)
def test_embedding_validation_is_422(client, body, words):
    assert_error(post_json(client, "/v1/embeddings", body), 422, words=words)


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/v1/rerank", {"query": "", "documents": ["d"]}, "query must not be empty"),
        ("/v1/rerank", {"query": "q", "documents": []}, "documents: list should have at least 1 item"),
        ("/v1/rerank", {"query": "q", "documents": ["d", ""]}, "documents[1] is empty"),
        ("/v1/rerank", {"query": "q", "documents": [{"title": "no text"}]}, "documents[0]"),
        ("/v1/rerank", {"query": "q\x00", "documents": ["d"]}, "NUL"),
        ("/v1/rerank", {"query": "q", "documents": ["\udfff"]}, "lone surrogate"),
        ("/v1/rerank", {"query": "q", "documents": "d"}, "documents"),
        ("/v1/rerank", {"query": "q", "documents": ["d"], "top_n": "2"}, "top_n"),
        ("/v2/rerank", {"query": "q", "documents": ["d"]}, "model: field required"),
        ("/v2/rerank", {"model": "fake", "query": "q", "documents": [{"text": "d"}]}, "documents[0]"),
        (
            "/v2/rerank",
            {"model": "fake", "query": "q", "documents": ["d"], "max_tokens_per_doc": 0},
            "max_tokens_per_doc",
        ),
    ],
)
def test_rerank_validation_is_422(client, path, body, words):
    assert_error(post_json(client, path, body), 422, words=words)


def test_unknown_model_is_404_naming_the_served_one(client):
    assert_error(
        post_json(client, "/v1/embeddings", {"input": "x", "model": "text-embedding-3-small"}),
        404,
        words="'fake:64'",
    )
    assert_error(
        post_json(client, "/v2/rerank", {"model": "rerank-v3.5", "query": "q", "documents": ["d"]}), 404
    )


def test_unknown_route_and_method_use_the_error_shape(client):
    assert_error(client.get("/v1/nothing"), 404)
    assert_error(client.get("/v1/embeddings"), 405)


def test_not_ready_while_loading_is_503():
    release = threading.Event()

    class SlowToLoad:
        @property
        def embedder(self):
            release.wait(10)
            return load_embedder("fake")

        @property
        def reranker(self):
            return Reranker(FakeReranker())

    from starlette.testclient import TestClient

    app = create_app(fake_settings(), SlowToLoad())
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["status"] == "loading" and r.headers["retry-after"] == "1"
        assert c.get("/health").status_code == 200
        assert_error(post_json(c, "/v1/embeddings", {"input": "x"}), 503, "not_ready", "loading")
        assert_error(post_json(c, "/v1/rerank", {"query": "q", "documents": ["d"]}), 503, "not_ready")
        release.set()
        from server_support import wait_ready

        wait_ready(app)
        assert post_json(c, "/v1/embeddings", {"input": "x"}).status_code == 200


def test_failed_load_keeps_ready_503_without_leaking_details():
    class Broken:
        @property
        def embedder(self):
            raise RuntimeError("/secret/path/model.safetensors is corrupt")

        reranker = None

    from starlette.testclient import TestClient

    with TestClient(create_app(fake_settings(), Broken()), base_url="http://127.0.0.1") as c:
        for _ in range(200):
            if c.get("/ready").json()["status"] == "failed":
                break
            threading.Event().wait(0.01)
        r = c.get("/ready")
        # The load must have ended as "failed" (not still "loading"), and stay refused without the path.
        assert r.status_code == 503 and r.json()["status"] == "failed", r.text
        assert "/secret" not in r.text
        refused = post_json(c, "/v1/embeddings", {"input": "x"})
        assert refused.status_code == 503 and "/secret" not in refused.text
