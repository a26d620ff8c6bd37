"""The server with tiny random Qwen3 models and the real tokenizer: same numbers as the library."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from server_support import StaticServices, fake_settings, post_json, ready_client

from finesift.server.app import create_app


@pytest.fixture(scope="module")
def client(tiny_embedder, tiny_reranker):
    app = create_app(fake_settings(), StaticServices(tiny_embedder, tiny_reranker))
    with ready_client(app) as c:
        yield c


def test_embeddings_match_the_library(client, tiny_embedder):
    texts = ["What is the capital of China?", "北京是中国的首都。", "def f(x):\n    return x * 2"]
    r = post_json(client, "/v1/embeddings", {"input": texts, "input_type": "query", "dimensions": 32})
    assert r.status_code == 200
    got = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    expected = tiny_embedder.encode(texts, input_type="query", dim=32)
    np.testing.assert_allclose(got, expected.vectors, atol=1e-5)
    assert r.json()["usage"]["prompt_tokens"] == expected.total_tokens


class CountingBackend:
    """The tiny backend, recording how many texts each model call gets; the first call is held a while,
    so that the other requests queue up behind it and must be batched together."""

    def __init__(self, backend, hold_s: float = 0.5) -> None:
        self._backend, self._hold_s = backend, hold_s
        self.calls: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def _record(self, n: int) -> None:
        self.calls.append(n)
        if len(self.calls) == 1:
            threading.Event().wait(self._hold_s)

    def embed(self, texts):
        self._record(len(texts))
        return self._backend.embed(texts)

    def embed_ids(self, ids):
        self._record(len(ids))
        return self._backend.embed_ids(ids)


def test_concurrent_requests_are_batched_and_give_the_same_vectors_as_alone(tiny_embedder, tiny_reranker):
    import concurrent.futures

    from finesift.embedding.embedder import Embedder

    counting = CountingBackend(tiny_embedder.backend)
    app = create_app(fake_settings(), StaticServices(Embedder(counting), tiny_reranker))
    texts = [f"document number {i} " + "word " * (i * 7) for i in range(12)]
    with ready_client(app) as c:
        counting.calls.clear()
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            responses = list(pool.map(lambda t: post_json(c, "/v1/embeddings", {"input": t}), texts))
    got = np.array([r.json()["data"][0]["embedding"] for r in responses], dtype=np.float32)
    np.testing.assert_allclose(got, tiny_embedder.embed_documents(texts), atol=1e-5)
    # Requests from different clients shared model calls: fewer calls than requests, one with several.
    assert sum(counting.calls) == len(texts) and max(counting.calls) > 1, counting.calls


def test_overlong_input_is_refused_unless_truncation_is_asked(client, tiny_embedder):
    limit = tiny_embedder.info.max_length
    text = "token " * (limit + 10)
    # "truncate": false is on_overflow="error" for this request (the embedder's own policy truncates).
    r = post_json(client, "/v1/embeddings", {"input": text, "truncate": False})
    assert r.status_code == 422 and f"{limit}-token limit" in r.json()["error"]["message"]
    ok = post_json(client, "/v1/embeddings", {"input": text, "truncate": True})
    assert ok.status_code == 200 and ok.headers["x-finesift-truncated"] == "1"
    assert ok.json()["usage"]["prompt_tokens"] == limit


def test_rerank_matches_the_library(client, tiny_reranker):
    docs = ["Beijing is the capital of China.", "Gravity bends light.", "北京是中国的首都。"]
    r = post_json(
        client, "/v1/rerank", {"query": "capital of China", "documents": docs, "instruction": "web_search"}
    )
    assert r.status_code == 200
    scores = tiny_reranker.score("capital of China", docs, instruction="web_search")
    results = r.json()["results"]
    assert [x["index"] for x in results] == sorted(range(3), key=lambda i: (-scores[i], i))
    for x in results:
        assert x["relevance_score"] == pytest.approx(scores[x["index"]], abs=1e-5)
    v2 = post_json(
        client,
        "/v2/rerank",
        {"model": tiny_reranker.model_id, "query": "capital of China", "documents": docs, "top_n": 1},
    ).json()
    assert v2["results"][0]["index"] == results[0]["index"]
