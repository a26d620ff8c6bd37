"""The GPU defaults, on a CUDA device: placement, flash-attention packing, the packed forward, vLLM.

Marked ``gpu``: the hook in ``tests/skip_policy.py`` skips them, and only them, where torch sees no
CUDA device (an allowed skip, tests/skips.toml). Each one holds the GPU path to the model card's code
(fp32 on CPU) or to transformers' padded forward, with the dtype's tolerance.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from finesift.doctor.probes import PROBES
from finesift.runtime.options import EngineOptions

pytestmark = pytest.mark.gpu

TEXTS = [*PROBES.documents]
QUERY, DOCS = PROBES.rerank[0][0].text, list(PROBES.rerank[0][1])
#: The doctor's pass marks for a bf16 backend against the fp32 model card.
BF16_MIN_COSINE, BF16_MAX_DELTA = 0.99, 0.05


def _needs_flash_attn() -> None:
    if importlib.util.find_spec("flash_attn") is None:
        pytest.skip("flash-attn is not installed (not in [all,dev]: it builds against the CUDA toolkit)")


def _card_vectors(model: Path, texts: list[str]) -> np.ndarray:
    from finesift.testing.reference import ReferenceEmbedder

    return np.asarray(ReferenceEmbedder(str(model), dtype="float32").embed(texts))


def _card_scores(model: Path) -> list[float]:
    from finesift.testing.reference import ReferenceReranker

    return ReferenceReranker(str(model), dtype="float32").score(QUERY, DOCS)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def test_cuda_defaults_are_bf16_with_flash_attention_when_installed() -> None:
    from finesift.runtime import hf

    device, dtype, attention = hf.placement("auto", "auto", EngineOptions())
    assert device.startswith("cuda") and str(dtype) == "torch.bfloat16"
    flash = importlib.util.find_spec("flash_attn") is not None
    assert attention == ("flash_attention_2" if flash else "sdpa")


def test_transformers_embedder_on_cuda_agrees_with_the_model_card(tiny_embedding_model: Path) -> None:
    from finesift import load_embedder

    embedder = load_embedder(str(tiny_embedding_model), device="cuda")  # the defaults: bf16, auto attention
    assert embedder.backend.device.startswith("cuda") and embedder.backend.packed is None
    got = embedder.embed_documents(TEXTS)
    assert _min_cosine(got, _card_vectors(tiny_embedding_model, TEXTS)) >= BF16_MIN_COSINE
    # A row alone equals the row in the batch (packing or padding must not leak between rows).
    alone = np.vstack([embedder.embed_documents([t]) for t in TEXTS[:3]])
    assert _min_cosine(alone, got[:3]) >= 0.999


def test_transformers_reranker_on_cuda_agrees_with_the_model_card(tiny_reranker_model: Path) -> None:
    from finesift import load_reranker

    reranker = load_reranker(str(tiny_reranker_model), device="cuda")
    got = reranker.score(QUERY, DOCS)
    assert np.max(np.abs(np.array(got) - np.array(_card_scores(tiny_reranker_model)))) <= BF16_MAX_DELTA


def test_flash_attention_packing_equals_the_padded_forward(tiny_reranker_model: Path) -> None:
    _needs_flash_attn()
    import torch
    from transformers import AutoModelForCausalLM

    from finesift.runtime import forward

    def load(attention: str):
        lm = AutoModelForCausalLM.from_pretrained(
            str(tiny_reranker_model), dtype=torch.bfloat16, attn_implementation=attention
        )
        return lm.base_model.to("cuda").eval()

    gen = torch.Generator().manual_seed(0)
    rows = [torch.randint(0, 5000, (n,), generator=gen).tolist() for n in (5, 17, 1, 300, 2, 9)]
    packed = forward.last_hidden_packed(load("flash_attention_2"), rows, device="cuda").float()
    padded = forward.last_hidden_padded(load("sdpa"), rows, pad_id=0, device="cuda").float()
    scale = max(1.0, padded.abs().max().item())
    assert (packed - padded).abs().max().item() <= 3e-2 * scale  # bf16: 8 bits of mantissa


def test_flash_attention_embedder_agrees_with_the_model_card(tiny_embedding_model: Path) -> None:
    _needs_flash_attn()
    from finesift import load_embedder

    embedder = load_embedder(str(tiny_embedding_model), device="cuda", attention="flash_attention_2")
    assert embedder.backend.attention == "flash_attention_2"
    got = embedder.embed_documents(TEXTS)
    assert _min_cosine(got, _card_vectors(tiny_embedding_model, TEXTS)) >= BF16_MIN_COSINE


def test_the_packed_forward_on_cuda_equals_transformers_fp32(tiny_embedding_model: Path) -> None:
    from finesift import load_embedder

    packed = load_embedder(str(tiny_embedding_model), device="cuda", dtype="float32", forward="packed")
    plain = load_embedder(str(tiny_embedding_model), device="cuda", dtype="float32", forward="transformers")
    assert packed.backend.packed is not None and plain.backend.packed is None
    a, b = packed.embed_documents(TEXTS), plain.embed_documents(TEXTS)
    assert _min_cosine(a, b) >= 0.99999
    assert _min_cosine(a, _card_vectors(tiny_embedding_model, TEXTS)) >= 0.99999


def test_vllm_agrees_with_the_model_card(tiny_embedding_model: Path, tiny_reranker_model: Path) -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM needs its package and a CUDA GPU (pip install 'finesift[vllm]')")
    from finesift import load_embedder, load_reranker

    embedder = load_embedder(str(tiny_embedding_model), backend="vllm")
    got = embedder.embed_documents(TEXTS)
    assert _min_cosine(got, _card_vectors(tiny_embedding_model, TEXTS)) >= BF16_MIN_COSINE
    reranker = load_reranker(str(tiny_reranker_model), backend="vllm")
    scores = np.array(reranker.score(QUERY, DOCS))
    assert np.max(np.abs(scores - np.array(_card_scores(tiny_reranker_model)))) <= BF16_MAX_DELTA
