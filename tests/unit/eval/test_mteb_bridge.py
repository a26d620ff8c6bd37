"""finesift as an ``mteb`` model: query/document sides, instructions, a real run on mteb's mock task."""

from __future__ import annotations

import importlib.util
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from finesift import load_embedder
from finesift.errors import MissingDependency
from finesift.eval.mteb import MTEBEncoder
from numerics import sum_tolerance

TASK = SimpleNamespace(name="SciFact", type="Retrieval")


def test_queries_get_the_task_instruction_and_documents_none() -> None:
    embedder = load_embedder("fake")
    model = MTEBEncoder(
        embedder, instructions={"SciFact": "Given a claim, retrieve evidence that supports it"}
    )
    batches = [{"text": ["a claim", "another"]}, {"text": ["third"]}]
    queries = model.encode(
        batches, task_metadata=TASK, hf_split="test", hf_subset="default", prompt_type="query"
    )
    docs = model.encode(
        batches, task_metadata=TASK, hf_split="test", hf_subset="default", prompt_type="document"
    )
    texts = ["a claim", "another", "third"]
    expected = embedder.embed_queries(texts, instruction="Given a claim, retrieve evidence that supports it")
    np.testing.assert_allclose(queries, expected)
    np.testing.assert_allclose(docs, embedder.embed_documents(texts))
    symmetric = model.encode(
        batches, task_metadata=SimpleNamespace(name="STSB", type="STS"), hf_split="test", hf_subset="default"
    )
    similar = embedder.embed_queries(texts, instruction="Retrieve semantically similar text")
    np.testing.assert_allclose(symmetric, similar)  # the official STS instruction on every text


def test_tasks_without_an_override_get_the_official_instruction() -> None:
    embedder = load_embedder("fake")
    model = MTEBEncoder(embedder)
    texts = ["a claim", "another"]
    queries = model.encode(
        [{"text": texts}], task_metadata=TASK, hf_split="test", hf_subset="default", prompt_type="query"
    )
    official = "Given a scientific claim, retrieve documents that support or refute the claim"
    np.testing.assert_allclose(queries, embedder.embed_queries(texts, instruction=official))
    arguana = SimpleNamespace(name="ArguAna", type="Retrieval")  # symmetric: documents instructed too
    docs = model.encode(
        [{"text": texts}], task_metadata=arguana, hf_split="test", hf_subset="default", prompt_type="document"
    )
    refute = "Given a claim, find documents that refute the claim"
    np.testing.assert_allclose(docs, embedder.embed_queries(texts, instruction=refute))


def test_dim_empty_texts_and_similarity() -> None:
    model = MTEBEncoder(load_embedder("fake"), dim=32)
    vectors = model.encode([{"text": ["x", ""]}], task_metadata=TASK, hf_split="t", hf_subset="d")
    assert vectors.shape == (2, 32)
    assert model.similarity(vectors, vectors).shape == (2, 2)
    tol = sum_tolerance(32)  # a cosine of 32-dim float32 vectors
    assert float(model.similarity(vectors[0], vectors[0])) == pytest.approx(1.0, abs=tol)
    np.testing.assert_allclose(model.similarity_pairwise(vectors, vectors), [1.0, 1.0], atol=tol)


def test_missing_mteb_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mteb", None)
    with pytest.raises(MissingDependency, match=r"finesift\[mteb\]"):
        _ = MTEBEncoder(load_embedder("fake")).mteb_model_meta


@pytest.mark.slow
def test_mteb_runs_its_mock_retrieval_task() -> None:
    if importlib.util.find_spec("mteb") is None:
        pytest.skip("mteb is not installed (the mteb extra, not in [all,dev]: it pulls datasets)")
    import mteb
    from mteb.mocks.mock_tasks.retrieval import MockRetrievalTask

    model = MTEBEncoder(load_embedder("fake"))
    results = mteb.evaluate(model, [MockRetrievalTask()], cache=None, show_progress_bar=False)
    assert [r.task_name for r in results.task_results] == ["MockRetrievalTask"]
    assert model.mteb_model_meta.embed_dim == 64
