"""The Ollama client against a loopback server speaking Ollama's documented /api/embed."""

from __future__ import annotations

import numpy as np
import pytest

from finesift import load_embedder
from finesift.embedding.fake import FakeEmbedder
from finesift.errors import BackendError
from finesift.testing.http import protocol_server

pytestmark = pytest.mark.service


def test_embeddings_in_order_with_context_and_no_silent_truncation() -> None:
    texts = ["one two", "three", "four five six"]
    with protocol_server() as (url, state):
        embedder = load_embedder(
            "qwen3-embedding:0.6b", backend="ollama", url=url, batch_size=2, max_length=4096
        )
        got = embedder.embed_documents(texts)
    raw = FakeEmbedder().embed(texts).vectors
    np.testing.assert_allclose(got, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    first = state.requests[-2]
    assert first["path"] == "/api/embed" and first["truncate"] is False
    assert first["options"] == {"num_ctx": 4096}
    assert first["model"] == "qwen3-embedding:0.6b"


def test_qwen3_instruction_is_applied_for_qwen3_names() -> None:
    with protocol_server() as (url, state):
        load_embedder("qwen3-embedding:0.6b", backend="ollama", url=url).embed_queries(["q"])
    assert state.requests[-1]["input"][0].startswith("Instruct: ")


def test_retries_then_succeeds_and_counts_mismatch_is_an_error() -> None:
    with protocol_server() as (url, state):
        state.faults.failures = 1
        embedder = load_embedder("m", backend="ollama", url=url, max_retries=2)
        assert embedder.embed_documents(["x"]).shape == (1, 64)

        class Short(FakeEmbedder):
            def embed(self, texts):
                return super().embed(texts[:1])

        state.embedder = Short()
        with pytest.raises(BackendError, match="returned 1 embeddings for 2 inputs"):
            embedder.embed_documents(["x", "y"])


def test_ollama_references_and_keep_alive_reach_the_server() -> None:
    with protocol_server() as (url, state):
        embedder = load_embedder("ollama:qwen3-embedding:0.6b", backend="ollama", url=url, keep_alive="10m")
        embedder.embed_documents(["a"])
        load_embedder("m", backend="ollama", url=url, keep_alive="-1").embed_documents(["b"])
    assert {(r["model"], r["keep_alive"]) for r in state.requests} == {
        ("qwen3-embedding:0.6b", "10m"),
        ("m", -1),
    }
