"""Reranker parity with the model-card reference code, in fp32 on the same random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from finesift import load_reranker  # noqa: E402
from finesift.testing.models import build_model, qwen3_config  # noqa: E402
from finesift.testing.reference import ReferenceReranker  # noqa: E402

QUERY = "how do I make a database query faster"
DOCS = [
    "Add an index on the filtered column; the planner then avoids a full scan.",
    "数据库索引可以显著加速查询。",
    "def add(a, b):\n    return a + b",
    "The weather in Paris is mild in spring.",
    "short",
]


@pytest.fixture(scope="module")
def reference(tiny_reranker_model: Path) -> ReferenceReranker:
    return ReferenceReranker(str(tiny_reranker_model), dtype=torch.float32)


def test_scores_match_reference(tiny_reranker, reference) -> None:
    ours = tiny_reranker.score(QUERY, DOCS)
    assert np.max(np.abs(np.array(ours) - reference.score(QUERY, DOCS))) <= 1e-5
    assert all(0.0 <= s <= 1.0 for s in ours)
    assert np.ptp(ours) > 1e-3, "tiny model should give varied scores"


def test_custom_instruction_matches_reference(tiny_reranker, reference) -> None:
    task = "Given a question, retrieve code that answers it"
    ours = tiny_reranker.score(QUERY, DOCS, instruction=task)
    assert np.max(np.abs(np.array(ours) - reference.score(QUERY, DOCS, instruction=task))) <= 1e-5


def test_untied_output_head_reads_lm_head(tmp_path: Path) -> None:
    path = build_model(
        tmp_path / "untied", "reranker", config=qwen3_config("reranker", tie_word_embeddings=False)
    )
    ours = load_reranker(str(path), dtype="float32", device="cpu").score(QUERY, DOCS)
    ref = ReferenceReranker(str(path), dtype=torch.float32).score(QUERY, DOCS)
    assert np.max(np.abs(np.array(ours) - ref)) <= 1e-5


def test_prompt_ids_equal_reference_when_nothing_is_cut(tiny_reranker, reference) -> None:
    backend = tiny_reranker.backend
    rows, truncated = backend.build(QUERY, DOCS, instruction=tiny_reranker.default_instruction)
    assert truncated == 0
    inputs = reference.process_inputs([reference.format_instruction(None, QUERY, d) for d in DOCS])
    for row, ref_ids, mask in zip(
        rows, inputs["input_ids"].tolist(), inputs["attention_mask"].tolist(), strict=True
    ):
        assert row == [t for t, m in zip(ref_ids, mask, strict=True) if m]
