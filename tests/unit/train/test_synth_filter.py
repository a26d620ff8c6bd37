"""The synth filter on another embedder's scale: a suggested ``--min-cosine`` and reused KB vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finesift import load_embedder
from finesift.train.passages import Passage
from finesift.train.synth import passage_vectors
from finesift.train.synth_output import SynthReport, suggest


def _unit(rows: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_the_suggestion_is_the_low_decile_of_queries_that_find_their_passage() -> None:
    rng = np.random.default_rng(0)
    passages = _unit(rng.normal(size=(40, 16)).tolist())
    vectors = {f"p{i}": passages[i] for i in range(40)}
    # Query i is passage i plus noise growing with i: the last ones retrieve another passage first.
    queries = _unit([(passages[i] + 0.08 * i * rng.normal(size=16)).tolist() for i in range(40)])
    ok = [{"key": f"k{i}", "passage": f"p{i}"} for i in range(40)]
    cosines = {f"k{i}": float(queries[i] @ passages[i]) for i in range(40)}
    found = [
        cosines[f"k{i}"] for i in range(40) if max(range(40), key=lambda j: queries[i] @ passages[j]) == i
    ]
    assert 5 < len(found) < 40  # some queries miss their passage
    expected = np.floor(np.percentile(found, 10) * 100) / 100
    assert suggest(ok, queries, vectors, cosines) == pytest.approx(expected)


def test_the_summary_names_the_suggested_threshold_when_the_filter_dropped_queries() -> None:
    report = SynthReport(
        out="o", passages=10, generated=10, kept=1, train=1, dev=0,
        dropped={"invalid_json": 0, "llm_failure": 0, "low_cosine": 9, "duplicate": 0},
        reasons={"low_cosine": [{"key": "k", "kind": "low_cosine", "reason": "cosine 0.41 < 0.7: 'q'"}]},
        min_cosine=0.7, mean_cosine=0.45, suggested_min_cosine=0.38,
    )  # fmt: skip
    text = report.summary()
    assert "dropped 9 low cosine" in text
    assert "--min-cosine 0.38" in text
    assert report.to_json()["suggested_min_cosine"] == 0.38


def test_stored_vectors_are_reused_and_only_the_rest_embedded() -> None:
    embedder = load_embedder("fake")
    passages = [Passage(f"d{n}", f"passage number {n} about topic {n % 3}") for n in range(6)]
    reference = embedder.embed_documents([p.text for p in passages])
    stored = {p.id: reference[i] for i, p in enumerate(passages[:4])}
    backend = embedder.backend
    before = backend.texts_embedded
    vectors = passage_vectors(passages, embedder, stored, progress=False)
    assert backend.texts_embedded - before == 2  # only the two passages the KB did not hold
    np.testing.assert_allclose(vectors, reference, atol=1e-6)


def test_a_knowledge_base_gives_its_vectors_to_synth(tmp_path: Path) -> None:
    pytest.importorskip("lancedb")
    from finesift.cli.synth import stored_vectors
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.settings import Settings
    from finesift.train.passages import from_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"doc{n}.md").write_text(
            f"# Topic {n}\n\nThe text of document {n} about cache {n}.\n", "utf-8"
        )
    settings = Settings(home=tmp_path / "home", embedding={"model": "fake"}, reranker={"model": "fake"})
    with KnowledgeBase.create("kb", settings=settings) as kb:
        kb.add([docs])
    with KnowledgeBase.open("kb", settings=settings) as kb:
        passages = from_kb(kb)
        stored = stored_vectors(kb)
        fresh = kb.embedder.embed_documents([p.text for p in passages])
    assert sorted(stored) == sorted(p.id for p in passages)
    for i, p in enumerate(passages):
        np.testing.assert_allclose(stored[p.id], fresh[i], atol=1e-5)
