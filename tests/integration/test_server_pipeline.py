"""The server runs the library's own request pipeline: tokenized once, the model's overflow policy,
the same vectors as the library, and the model facts from ``info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from server_support import StaticServices, fake_settings, post_json, ready_client

from finesift.embedding.embedder import Embedder
from finesift.embedding.fake import FakeEmbedder
from finesift.rerank.base import Reranker
from finesift.rerank.fake import FakeReranker
from finesift.server.app import create_app
from finesift.settings import Settings


class CountingTokenizer:
    """Wraps a Hugging Face tokenizer and counts how often it is called on texts."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def counted(tiny_embedding_model: Path) -> Any:
    """A private tiny transformers backend whose tokenizer counts its calls."""
    from finesift.embedding.transformers import TransformersEmbedder

    backend = TransformersEmbedder(tiny_embedding_model, device="cpu", dtype="float32", max_length=64)
    backend.tokenizer = CountingTokenizer(backend.tokenizer)
    return backend


def _serve(embedder: Embedder, **server: Any) -> Any:
    return ready_client(
        create_app(fake_settings(**server), StaticServices(embedder, Reranker(FakeReranker())))
    )


@pytest.mark.parametrize("policy", ["truncate", "error"])
def test_the_server_tokenizes_each_request_once(counted: Any, policy: str) -> None:
    with _serve(Embedder(counted, on_overflow=policy)) as client:  # type: ignore[arg-type]
        texts = ["What is the capital of China?", "北京是中国的首都。", "gravity " * 10]
        for body in (
            {"input": texts, "input_type": "query", "instruction": "code_search", "dimensions": 32},
            {"input": texts[0]},
        ):
            before = counted.tokenizer.calls
            r = post_json(client, "/v1/embeddings", body)
            assert r.status_code == 200, r.text
            assert counted.tokenizer.calls - before == 1


def test_the_library_tokenizes_once_even_when_it_refuses_overflow(counted: Any) -> None:
    embedder = Embedder(counted, on_overflow="error")
    before = counted.tokenizer.calls
    embedder.encode(["one text", "another text"], input_type="query")
    assert counted.tokenizer.calls - before == 1


@pytest.mark.parametrize(
    ("policy", "truncate", "status"),
    [
        ("truncate", None, 200),
        ("error", None, 422),
        ("error", True, 200),
        ("truncate", False, 422),
    ],
)
def test_the_server_honours_on_overflow(policy: str, truncate: bool | None, status: int) -> None:
    settings = Settings(
        embedding={"model": "fake", "max_length": 16, "on_overflow": policy}, reranker={"model": "fake"}
    )
    over = " ".join(["wo"] * 20)  # 21 fake tokens
    body: dict[str, Any] = {"input": ["short text", over]}
    if truncate is not None:
        body["truncate"] = truncate
    with ready_client(create_app(settings)) as client:
        r = post_json(client, "/v1/embeddings", body)
    assert r.status_code == status, r.text
    if status == 200:
        assert r.headers["x-finesift-truncated"] == "1"
        assert r.json()["usage"]["prompt_tokens"] == 3 + 16
    else:
        assert "input[1] has 21 tokens, over the 16-token limit" in r.json()["error"]["message"]


def test_server_embeddings_equal_the_library_for_a_query_with_instruction_and_dim(tiny_embedder) -> None:
    texts = ["how do I reverse a list", "def f(x):\n    return x[::-1]"]
    with _serve(tiny_embedder) as client:
        r = post_json(
            client,
            "/v1/embeddings",
            {"input": texts, "input_type": "query", "instruction": "code_search", "dimensions": 48},
        )
    assert r.status_code == 200, r.text
    got = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    want = tiny_embedder.encode(texts, input_type="query", instruction="code_search", dim=48)
    assert got.shape == (2, 48)
    np.testing.assert_allclose(got, want.vectors, atol=1e-5)
    # Independent of the pipeline: the raw backend on the hand-formatted query, sliced then normalised.
    formatted = [
        "Instruct: Given a natural language query, retrieve code snippets that answer the query\nQuery:" + t
        for t in texts
    ]
    raw = tiny_embedder.backend.embed(formatted).vectors[:, :48]
    np.testing.assert_allclose(got, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
    assert r.json()["usage"]["prompt_tokens"] == want.total_tokens


def test_info_fields(tiny_embedder, tiny_reranker, tiny_embedding_model: Path) -> None:
    info = tiny_embedder.info
    assert info.model_id == str(tiny_embedding_model)
    assert (info.dimension, info.query_format, info.backend) == (64, "qwen3", "TransformersEmbedder")
    assert info.max_length == 8192 and info.local_tokenizer
    assert info.instruction.startswith("Given a web search query")
    fake = Embedder(FakeEmbedder(48, max_length=100), instruction="code_search").info
    assert (fake.model_id, fake.dimension, fake.max_length, fake.backend) == (
        "fake:48",
        48,
        100,
        "FakeEmbedder",
    )
    assert not fake.local_tokenizer and fake.instruction.startswith("Given a natural language query")
    rinfo = tiny_reranker.info
    assert (rinfo.backend, rinfo.max_length) == ("TransformersReranker", 8192)
    assert rinfo.instruction.startswith("Given a web search query")
    with _serve(tiny_embedder) as client:
        cards = client.get("/v1/models").json()["data"]
    # Served under its directory's name (never an absolute path); the `:query` alias follows it.
    assert cards[0]["id"] == Path(info.model_id).name and cards[0]["dimension"] == 64
    assert cards[0]["max_length"] == info.max_length and cards[-1]["max_length"] == 8192


def test_plan_run_finish_is_encode(tiny_embedder) -> None:
    texts = ["a query", "another, longer query about Beijing"]
    plan = tiny_embedder.plan(texts, input_type="query", dim=32)
    assert plan.counts == [len(ids) for ids in plan.inputs] and plan.over == 0
    # The queue may run a plan's inputs in any grouping: one at a time gives the same rows.
    rows = [tiny_embedder.run([x]) for x in plan.inputs]
    from finesift.embedding.base import EmbeddingOutput

    joined = EmbeddingOutput(np.vstack([r.vectors for r in rows]), [r.tokens[0] for r in rows], 0)
    got = tiny_embedder.finish(plan, joined)
    want = tiny_embedder.encode(texts, input_type="query", dim=32)
    np.testing.assert_allclose(got.vectors, want.vectors, atol=1e-5)
    assert got.tokens == want.tokens
