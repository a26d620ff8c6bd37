"""Every doctor diagnosis, proven by injecting its fault into the tiny model and reading the verdict.

The reference is the model cards' code (``finesift.runtime.model_card``, which imports nothing from
finesift), as in ``finesift doctor``: a green row means "agrees with the model card", not with finesift.
"""

from __future__ import annotations

import pytest

from finesift.doctor import faults
from finesift.doctor.checks import EmbeddingChecker, RerankChecker
from finesift.doctor.diagnose import CATALOGUE, Thresholds
from finesift.doctor.model_card import CardEmbedder, CardReranker
from finesift.embedding.embedder import Embedder
from finesift.rerank.base import Reranker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedding_checker(tiny_embedder) -> EmbeddingChecker:
    backend = tiny_embedder.backend
    card = CardEmbedder(
        backend.path, instruction=None, max_length=backend.max_length, device="cpu", replay=lambda: backend
    )
    return EmbeddingChecker(card, Thresholds())


@pytest.fixture(scope="module")
def rerank_checker(tiny_reranker) -> RerankChecker:
    backend = tiny_reranker.backend
    card = CardReranker(
        backend.path, instruction=None, max_length=backend.max_length, device="cpu", replay=lambda: backend
    )
    return RerankChecker(card, Thresholds())


def test_probe_long_text_is_longer_than_a_default_micro_batch(tiny_embedder) -> None:
    from finesift.doctor.probes import PROBES

    assert 600 < tiny_embedder.backend.count_tokens([PROBES.documents[-1]])[0] < 2000


def test_a_healthy_backend_is_green(embedding_checker, tiny_embedder) -> None:
    assert isinstance(embedding_checker.reference, CardEmbedder)  # the model card, not finesift
    row = embedding_checker.check("healthy", Embedder(tiny_embedder.backend))
    assert row.status == "ok", row.explain()
    assert row.metrics.cos_min == pytest.approx(1.0, abs=1e-5)
    assert row.metrics.agreement == 1.0


@pytest.mark.parametrize(
    ("fault", "diagnosis"),
    [
        ("missing_eos", "missing_eos"),
        ("right_padding", "right_padding"),
        ("mean_pooling", "wrong_pooling"),
        ("truncation", "truncation"),
        ("no_instruction", "query_instruction"),
        ("nan", "nan_vectors"),
    ],
)
def test_embedding_faults_are_diagnosed(embedding_checker, tiny_embedder, fault: str, diagnosis: str) -> None:
    candidate = Embedder(faults.EMBEDDING_FAULTS[fault](tiny_embedder.backend))
    row = embedding_checker.check(fault, candidate)
    assert row.status == "fail"
    assert row.diagnosis == diagnosis, row.explain()
    assert CATALOGUE[diagnosis].title.split(":")[0] in row.explain()


def test_normalise_before_slice_is_diagnosed(embedding_checker, tiny_embedder) -> None:
    row = embedding_checker.check("nbs", faults.NormaliseBeforeSliceEmbedder(tiny_embedder.backend))
    assert (row.status, row.diagnosis) == ("fail", "normalise_before_slice")
    assert "then L2-normalise" in row.explain()


def test_a_healthy_reranker_is_green(rerank_checker, tiny_reranker) -> None:
    assert isinstance(rerank_checker.reference, CardReranker)  # the model card, not finesift
    row = rerank_checker.check("healthy", Reranker(tiny_reranker.backend))
    assert row.status == "ok", row.explain()
    assert row.metrics.max_delta == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize(
    ("fault", "diagnosis"),
    [
        ("template_drift", "template_drift"),
        ("truncated_suffix", "truncated_suffix"),
        ("swapped_yes_no", "swapped_yes_no"),
        ("constant_half", "constant_half"),
        ("constant_zero", "all_zero"),
        ("nan", "nan_scores"),
    ],
)
def test_rerank_faults_are_diagnosed(rerank_checker, tiny_reranker, fault: str, diagnosis: str) -> None:
    candidate = Reranker(faults.RERANK_FAULTS[fault](tiny_reranker.backend))
    row = rerank_checker.check(fault, candidate)
    assert row.status == "fail"
    assert row.diagnosis == diagnosis, (row.explain(), row.metrics)
