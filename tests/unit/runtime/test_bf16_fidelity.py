"""The issue's fidelity targets as tests on the tiny models: bf16 against fp32, through the public API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

TEXTS = [
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "def capital(country):\n    return CAPITALS[country]",
    "Paris is the capital of France. " * 12,
    "短",
    "Qwen3-Embedding pools the last token of every text.",
]
QUERY = "北京是哪个国家的首都？ What is the capital of China?"


@pytest.mark.parametrize("forward", ["packed", "transformers"])
def test_bf16_embeddings_keep_cosine_0999(tiny_embedding_model: Path, tiny_embedder, forward: str) -> None:
    from finesift import load_embedder

    bf16 = load_embedder(str(tiny_embedding_model), device="cpu", dtype="bfloat16", forward=forward)
    cos = (bf16.embed_documents(TEXTS) * tiny_embedder.embed_documents(TEXTS)).sum(axis=1)
    assert float(cos.min()) >= 0.999


@pytest.mark.parametrize("forward", ["packed", "transformers"])
def test_bf16_rerank_scores_within_002(tiny_reranker_model: Path, tiny_reranker, forward: str) -> None:
    from finesift import load_reranker

    bf16 = load_reranker(str(tiny_reranker_model), device="cpu", dtype="bfloat16", forward=forward)
    got = np.array(bf16.score(QUERY, TEXTS))
    want = np.array(tiny_reranker.score(QUERY, TEXTS))
    assert float(np.abs(got - want).max()) <= 0.02
