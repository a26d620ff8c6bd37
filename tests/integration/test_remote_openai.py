"""The OpenAI-compatible embedding client against a real loopback server speaking the protocol."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import SecretStr

from finesift import load_embedder
from finesift.embedding.fake import FakeEmbedder
from finesift.embedding.instructions import DEFAULT_TASK, format_query
from finesift.errors import BackendError, InvalidRequest
from finesift.testing.http import protocol_server

pytestmark = pytest.mark.service
TEXTS = ["alpha beta", "gamma", "delta epsilon zeta", "中文 检索", "def f(x): return x"]


def _fast(url: str, **options):
    return load_embedder(
        "Qwen/Qwen3-Embedding-0.6B", backend="openai", url=url, max_retries=3, timeout_s=2.0, **options
    )


def test_vectors_match_the_server_model_in_input_order_despite_shuffled_indices() -> None:
    with protocol_server() as (url, state):
        state.faults.shuffle = True
        embedder = _fast(url, batch_size=2)
        got = embedder.embed_documents(TEXTS)
    direct = FakeEmbedder().embed(TEXTS).vectors
    expected = direct / np.linalg.norm(direct, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    sizes = [len(r["input"]) for r in state.requests if r["path"] == "/v1/embeddings"]
    assert sizes[-3:] == [2, 2, 1]


def test_qwen3_query_instruction_is_applied_client_side_and_can_be_turned_off() -> None:
    with protocol_server() as (url, state):
        _fast(url).embed_queries(["what is bm25"])
        assert state.requests[-1]["input"] == [format_query("what is bm25", DEFAULT_TASK)]
        _fast(url, query_format="none").embed_queries(["what is bm25"])
        assert state.requests[-1]["input"] == ["what is bm25"]
        _fast(url).embed_documents(["a document"])
        assert state.requests[-1]["input"] == ["a document"]


def test_auto_query_format_only_for_qwen3_models() -> None:
    with protocol_server() as (url, state):
        load_embedder("text-embedding-3-small", backend="openai", url=url).embed_queries(["q"])
        assert state.requests[-1]["input"] == ["q"]


def test_backend_returns_raw_vectors_without_normalising() -> None:
    with protocol_server() as (url, _):
        backend = _fast(url).backend
        raw = backend.embed(["alpha beta gamma"]).vectors
    np.testing.assert_allclose(raw, FakeEmbedder().embed(["alpha beta gamma"]).vectors)
    assert abs(float(np.linalg.norm(raw)) - 1.0) > 0.1


def test_mrl_dimension_is_sliced_above_the_backend() -> None:
    with protocol_server() as (url, _):
        embedder = _fast(url)
        assert embedder.dimension == 64
        vec = embedder.embed_documents(["alpha beta"], dim=32)
    assert vec.shape == (1, 32)
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_failures_are_retried(status: int) -> None:
    with protocol_server() as (url, state):
        embedder = _fast(url)
        assert embedder.dimension == 64
        state.faults.fail_status, state.faults.failures = status, 2
        vec = embedder.embed_documents(["alpha"])
    assert vec.shape == (1, 64)
    assert len([r for r in state.requests if r["input"] == ["alpha"]]) == 3


def test_a_stalled_server_times_out_then_succeeds_on_retry() -> None:
    with protocol_server() as (url, state):
        state.faults.stall_s, state.faults.stalls = 1.5, 1
        embedder = load_embedder("m", backend="openai", url=url, timeout_s=0.3, max_retries=2)
        vec = embedder.embed_documents(["alpha"])
    assert vec.shape == (1, 64)


def test_a_dead_server_fails_with_one_clear_error() -> None:
    with protocol_server() as (url, _):
        pass
    embedder = load_embedder("m", backend="openai", url=url, timeout_s=0.5, max_retries=1)
    with pytest.raises(BackendError, match="still failing after 2 attempts"):
        embedder.embed_documents(["alpha"])


def test_batch_limits_are_learnt_from_413() -> None:
    with protocol_server() as (url, state):
        state.faults.max_batch = 2
        vec = _fast(url, batch_size=16).embed_documents(TEXTS)
    direct = FakeEmbedder().embed(TEXTS).vectors
    np.testing.assert_allclose(
        vec, direct / np.linalg.norm(direct, axis=1, keepdims=True), rtol=1e-5, atol=1e-6
    )
    # After the one-text probe that learns the dimension: 5 refused (413), halved to 8 (still the 5:
    # refused), 4 (refused), then 2 per request for the rest of the call.
    assert [len(r["input"]) for r in state.requests if r.get("input")] == [1, 5, 5, 4, 2, 2, 1]


def test_api_key_is_sent_as_bearer() -> None:
    with protocol_server() as (url, state):
        state.faults.require_key = "sk-test"
        with pytest.raises(BackendError, match="credentials"):
            _fast(url).embed_documents(["a"])
        assert _fast(url, api_key=SecretStr("sk-test")).embed_documents(["a"]).shape == (1, 64)


def test_missing_url_and_local_token_counting_are_clear_errors() -> None:
    with pytest.raises(InvalidRequest, match="needs a URL"):
        load_embedder("m", backend="openai")
    with protocol_server() as (url, _):
        embedder = load_embedder("m", backend="openai", url=url, on_overflow="error")
        with pytest.raises(InvalidRequest, match="cannot count tokens"):
            embedder.embed_documents(["a"])


def test_auto_backend_with_a_url_is_openai() -> None:
    with protocol_server() as (url, _):
        assert type(load_embedder("m", url=url).backend).__name__ == "OpenAIEmbedder"
