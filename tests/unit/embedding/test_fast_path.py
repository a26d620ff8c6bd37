"""The embedding fast path: token-budget batching, SDPA, options; equal to the model-card code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finesift.embedding.transformers import TransformersEmbedder
from finesift.errors import InvalidRequest
from finesift.runtime.options import EngineOptions
from finesift.testing.reference import ReferenceEmbedder

torch = pytest.importorskip("torch")

TEXTS = [
    "北京是中华人民共和国的首都。",
    "def add(a, b):\n    return a + b",
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:capital?",
    "A much longer English paragraph about retrieval. " * 20,
    "短",
]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def fp32(tiny_embedding_model: Path) -> TransformersEmbedder:
    return TransformersEmbedder(tiny_embedding_model, device="cpu", dtype="float32", token_budget=128)


def test_fast_path_equals_model_card_code(fp32: TransformersEmbedder, tiny_embedding_model: Path) -> None:
    ours = unit(fp32.embed(TEXTS).vectors)
    ref = ReferenceEmbedder(str(tiny_embedding_model), dtype=torch.float32).embed(TEXTS)
    assert float((ours * ref).sum(axis=1).min()) >= 0.99999


def test_small_budget_splits_batches_without_changing_vectors(
    fp32: TransformersEmbedder, tiny_embedding_model: Path
) -> None:
    wide = TransformersEmbedder(tiny_embedding_model, device="cpu", dtype="float32", token_budget=1 << 16)
    a, b = unit(fp32.embed(TEXTS).vectors), unit(wide.embed(TEXTS).vectors)
    assert float((a * b).sum(axis=1).min()) >= 0.99999


def test_int8_quantization_keeps_vectors_close(
    fp32: TransformersEmbedder, tiny_embedding_model: Path
) -> None:
    int8 = TransformersEmbedder(tiny_embedding_model, device="cpu", options=EngineOptions(quantize="int8"))
    assert int8.torch_dtype == torch.float32
    cos = (unit(int8.embed(TEXTS).vectors) * unit(fp32.embed(TEXTS).vectors)).sum(axis=1)
    assert float(cos.min()) >= 0.99


def test_int8_refuses_bf16(tiny_embedding_model: Path) -> None:
    with pytest.raises(InvalidRequest, match="float32"):
        TransformersEmbedder(
            tiny_embedding_model, device="cpu", dtype="bfloat16", options=EngineOptions(quantize="int8")
        )


def test_flash_attention_without_cuda_is_a_clear_error(tiny_embedding_model: Path) -> None:
    with pytest.raises(InvalidRequest, match="flash"):
        TransformersEmbedder(
            tiny_embedding_model, device="cpu", options=EngineOptions(attention="flash_attention_2")
        )


def test_auto_attention_is_sdpa_on_cpu(fp32: TransformersEmbedder) -> None:
    assert fp32.attention == "sdpa"
