"""The GGUF path end to end on the tiny models through llama-cpp-python (the `llamacpp` extra).

The vectors and scores are compared with the model-card code (``finesift.testing.reference``) in
fp32, within the doctor's pass marks and tighter where llama.cpp runs in f32. CI installs
llama-cpp-python from a cached wheel (``scripts/llamacpp_wheel.sh``), so these run there.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from finesift.doctor.diagnose import Thresholds
from finesift.doctor.probes import PROBES
from finesift.embedding.embedder import Embedder
from finesift.embedding.instructions import resolve_instruction
from finesift.rerank.base import Reranker

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow
TEXTS = [*PROBES.documents]
MARKS = Thresholds()
#: Every probe text fits: the reference and llama.cpp read them whole.
WINDOW = 2048


@pytest.fixture(scope="module")
def reference_vectors(tiny_embedding_model):
    from finesift.testing.reference import ReferenceEmbedder, get_detailed_instruct

    ref = ReferenceEmbedder(str(tiny_embedding_model), dtype=torch.float32, max_length=WINDOW)
    queries = [get_detailed_instruct(resolve_instruction(q.instruction), q.text) for q in PROBES.queries]
    return ref.embed(queries), ref.embed(TEXTS)


@pytest.fixture(scope="module")
def llama_embedder(tiny_gguf):
    from finesift.embedding.llamacpp import LlamaCppEmbedder

    return Embedder(LlamaCppEmbedder(tiny_gguf("embedding"), max_length=WINDOW))


@pytest.fixture(scope="module")
def llama_reranker(tiny_gguf):
    from finesift.rerank.llamacpp import LlamaCppReranker

    return Reranker(LlamaCppReranker(tiny_gguf("reranker"), max_length=WINDOW))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_vectors_match_the_model_card_reference(llama_embedder, reference_vectors) -> None:
    want_q, want_d = reference_vectors
    got_d = llama_embedder.embed_documents(TEXTS)
    got_q = np.vstack(
        [llama_embedder.embed_queries([q.text], instruction=q.instruction) for q in PROBES.queries]
    )
    assert np.min(_cosines(got_d, want_d)) > max(MARKS.min_cosine, 0.999)
    assert np.min(_cosines(got_q, want_q)) > max(MARKS.min_cosine, 0.999)
    mrl = llama_embedder.embed_documents(TEXTS[:3], dim=32)
    ref_mrl = want_d[:3, :32] / np.linalg.norm(want_d[:3, :32], axis=1, keepdims=True)
    assert np.min(_cosines(mrl, ref_mrl)) > 0.999


def test_eos_is_appended_and_kept_when_truncating(llama_embedder, tiny_embedder) -> None:
    backend = llama_embedder.backend
    assert backend.count_tokens(["hello world"]) == tiny_embedder.backend.count_tokens(["hello world"])
    short = type(backend)(backend.path, max_length=64)
    out = short.embed([PROBES.documents[-1]])
    assert out.truncated == 1 and out.tokens == [64]


def test_an_old_gguf_without_eos_or_pooling_metadata_is_fixed_at_load(
    tiny_embedding_model, reference_vectors, tmp_path
):
    from finesift.embedding.llamacpp import LlamaCppEmbedder
    from finesift.runtime.gguf import convert

    # the embedding model written as a plain causal LM: no EOS appended, no pooling recorded
    old = convert(tiny_embedding_model, tmp_path / "old.gguf", kind="reranker", file_type="f32")
    vectors = Embedder(LlamaCppEmbedder(old, max_length=WINDOW)).embed_documents(TEXTS[:3])
    assert np.min(_cosines(vectors, reference_vectors[1][:3])) > 0.999


def test_reranker_scores_match_the_model_card_reference(llama_reranker, tiny_reranker_model) -> None:
    from finesift.testing.reference import ReferenceReranker

    ref = ReferenceReranker(str(tiny_reranker_model), dtype=torch.float32, max_length=WINDOW)
    worst = 0.0
    for query, docs in PROBES.rerank:
        got = llama_reranker.score(query.text, list(docs), instruction=query.instruction)
        want = ref.score(query.text, list(docs), instruction=resolve_instruction(query.instruction))
        worst = max(worst, *(abs(g - w) for g, w in zip(got, want, strict=True)))
    assert worst < min(MARKS.max_delta, 2e-3)


def test_every_llama_quantize_type_keeps_the_eos_fix_and_stays_close(tiny_gguf, reference_vectors) -> None:
    from finesift.embedding.llamacpp import LlamaCppEmbedder
    from finesift.runtime.gguf import LLAMA_TYPES

    want = reference_vectors[1][:4]
    for file_type, ftype in {"q8_0": 7, **LLAMA_TYPES}.items():
        backend = LlamaCppEmbedder(tiny_gguf("embedding", file_type), max_length=128)
        meta = backend.llm.metadata  # as written: the load-time overrides do not show here
        assert meta["general.file_type"] == str(ftype), file_type
        assert meta["tokenizer.ggml.add_eos_token"] == "true" and meta["qwen3.pooling_type"] == "3"
        cosines = _cosines(Embedder(backend).embed_documents(TEXTS[:4]), want)
        # The tiny model's 64-wide rows are below the K-quant block (256), so llama.cpp falls back
        # per tensor; q4_0/q4_1 (32-wide blocks, no fallback) are the coarsest it writes here.
        if file_type in ("q8_0", "q6_k"):
            assert np.min(cosines) > 0.99, (file_type, cosines)
        elif file_type in ("q4_0", "q4_1"):
            assert np.mean(cosines) > 0.8, (file_type, cosines)
        else:
            assert np.min(cosines) > 0.9, (file_type, cosines)


def test_the_ftype_table_is_llama_cpps() -> None:
    import llama_cpp

    from finesift.runtime.gguf import LLAMA_TYPES

    assert {t: getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{t.upper()}") for t in LLAMA_TYPES} == LLAMA_TYPES
    needs_imatrix = {"iq2_xxs", "iq2_xs", "iq2_s", "iq1_s", "iq1_m", "q2_k_s"}
    offered = {n.removeprefix("LLAMA_FTYPE_MOSTLY_").lower() for n in dir(llama_cpp) if "FTYPE_MOSTLY_" in n}
    left_out = offered - set(LLAMA_TYPES) - {"f16", "bf16", "q8_0"}  # those three the gguf package writes
    assert left_out <= needs_imatrix | {"iq2_m", "tq1_0", "tq2_0", "mxfp4_moe"}


def test_q8_0_reranker_stays_within_the_doctor_marks(tiny_gguf, tiny_reranker_model) -> None:
    from finesift.rerank.llamacpp import LlamaCppReranker
    from finesift.testing.reference import ReferenceReranker

    ref = ReferenceReranker(str(tiny_reranker_model), dtype=torch.float32, max_length=WINDOW)
    reranker = Reranker(LlamaCppReranker(tiny_gguf("reranker", "q8_0"), max_length=WINDOW))
    query, docs = PROBES.rerank[0]
    got = reranker.score(query.text, list(docs), instruction=query.instruction)
    want = ref.score(query.text, list(docs), instruction=resolve_instruction(query.instruction))
    assert max(abs(g - w) for g, w in zip(got, want, strict=True)) < MARKS.max_delta


def test_a_gguf_hub_reference_loads_from_the_cache(tiny_gguf, reference_vectors, tmp_path) -> None:
    from finesift.embedding.factory import build_embedder
    from finesift.embedding.llamacpp import LlamaCppEmbedder
    from finesift.settings import EmbeddingSettings, HubSettings

    snapshot = tmp_path / "models--Qwen--Qwen3-Embedding-0.6B-GGUF" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    shutil.copy(tiny_gguf("embedding"), snapshot / "Qwen3-Embedding-0.6B-F32.gguf")
    shutil.copy(tiny_gguf("embedding", "q6_k"), snapshot / "Qwen3-Embedding-0.6B-Q6_K.gguf")
    settings = EmbeddingSettings(model="Qwen/Qwen3-Embedding-0.6B-GGUF:f32", max_length=WINDOW)
    embedder = build_embedder(settings, HubSettings(cache_dir=str(tmp_path), offline=True))
    assert isinstance(embedder.backend, LlamaCppEmbedder)
    assert np.min(_cosines(embedder.embed_documents(TEXTS[:3]), reference_vectors[1][:3])) > 0.999


def test_doctor_llamacpp_rows_are_green(
    tiny_embedding_model, tiny_reranker_model, tiny_gguf, tmp_path
) -> None:
    from finesift import Settings
    from finesift.doctor import DoctorOptions, run_doctor

    settings = Settings(
        home=tmp_path,
        embedding={"model": str(tiny_embedding_model), "max_length": WINDOW},
        reranker={"model": str(tiny_reranker_model), "max_length": WINDOW},
    )
    options = DoctorOptions(
        backends=("llamacpp",),
        device="cpu",
        gguf=str(tiny_gguf("embedding", "q6_k")),
        reranker_gguf=str(tiny_gguf("reranker")),
    )
    report = run_doctor(settings, options)
    assert report.ok, report.table()
    assert [r.status for r in report.rows] == ["ok", "ok"]
