"""The GGUF path end to end on the tiny models, where llama-cpp-python is installed (the `llamacpp` extra)."""

from __future__ import annotations

import numpy as np
import pytest

from finesift.doctor.probes import PROBES
from finesift.embedding.embedder import Embedder
from finesift.rerank.base import Reranker

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")
pytestmark = pytest.mark.slow
TEXTS = [*PROBES.documents]


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf")


@pytest.fixture(scope="module")
def llama_embedder(tiny_embedding_model, gguf_dir):
    from finesift.embedding.llamacpp import LlamaCppEmbedder
    from finesift.runtime.gguf import convert

    path = convert(tiny_embedding_model, gguf_dir / "e.f32.gguf", kind="embedding", file_type="f32")
    return Embedder(LlamaCppEmbedder(path, max_length=2048))


@pytest.fixture(scope="module")
def llama_reranker(tiny_reranker_model, gguf_dir):
    from finesift.rerank.llamacpp import LlamaCppReranker
    from finesift.runtime.gguf import convert

    path = convert(tiny_reranker_model, gguf_dir / "r.f32.gguf", kind="reranker", file_type="f32")
    return Reranker(LlamaCppReranker(path, max_length=2048))


def test_vectors_match_transformers_fp32(llama_embedder, tiny_embedder) -> None:
    got = llama_embedder.embed_documents(TEXTS)
    want = tiny_embedder.embed_documents(TEXTS)
    assert np.min(np.sum(got * want, axis=1)) > 0.999
    query = ["什么是向量检索？"]
    got_q = llama_embedder.embed_queries(query, instruction="chinese_retrieval")
    want_q = tiny_embedder.embed_queries(query, instruction="chinese_retrieval")
    assert float(np.sum(got_q * want_q)) > 0.999


def test_eos_is_appended_and_kept_when_truncating(llama_embedder, tiny_embedder) -> None:
    backend = llama_embedder.backend
    assert backend.count_tokens(["hello world"]) == tiny_embedder.backend.count_tokens(["hello world"])
    short = type(backend)(backend.path, max_length=64)
    out = short.embed([PROBES.documents[-1]])
    assert out.truncated == 1 and out.tokens == [64]


def test_an_old_gguf_without_eos_or_pooling_metadata_is_fixed_at_load(
    tiny_embedding_model, gguf_dir, tiny_embedder
):
    from finesift.embedding.llamacpp import LlamaCppEmbedder
    from finesift.runtime.gguf import convert

    old = convert(tiny_embedding_model, gguf_dir / "old.gguf", kind="reranker", file_type="f32")
    vectors = Embedder(LlamaCppEmbedder(old, max_length=2048)).embed_documents(TEXTS[:3])
    assert np.min(np.sum(vectors * tiny_embedder.embed_documents(TEXTS[:3]), axis=1)) > 0.999


def test_reranker_scores_match_transformers_fp32(llama_reranker, tiny_reranker) -> None:
    for query, docs in PROBES.rerank:
        got = llama_reranker.score(query.text, list(docs), instruction=query.instruction)
        want = tiny_reranker.score(query.text, list(docs), instruction=query.instruction)
        assert got == pytest.approx(want, abs=2e-3)


def test_q8_0_and_q4_k_m_files_load_and_stay_close(tiny_embedding_model, gguf_dir, tiny_embedder) -> None:
    from finesift.embedding.llamacpp import LlamaCppEmbedder
    from finesift.runtime.gguf import convert

    want = tiny_embedder.embed_documents(TEXTS[:4])
    for file_type, floor in (("q8_0", 0.99), ("q4_k_m", 0.8)):
        path = convert(
            tiny_embedding_model, gguf_dir / f"e.{file_type}.gguf", kind="embedding", file_type=file_type
        )
        got = Embedder(LlamaCppEmbedder(path, max_length=1024)).embed_documents(TEXTS[:4])
        assert np.min(np.sum(got * want, axis=1)) > floor, file_type


def test_doctor_llamacpp_rows_are_green(tiny_embedding_model, tiny_reranker_model, tmp_path) -> None:
    from finesift import Settings
    from finesift.doctor import DoctorOptions, run_doctor

    settings = Settings(
        home=tmp_path,
        embedding={"model": str(tiny_embedding_model), "max_length": 2048},
        reranker={"model": str(tiny_reranker_model), "max_length": 2048},
    )
    report = run_doctor(settings, DoctorOptions(backends=("llamacpp",), device="cpu", gguf_type="f32"))
    assert report.ok, report.table()
    assert [r.status for r in report.rows] == ["ok", "ok"]
