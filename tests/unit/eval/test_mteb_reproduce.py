"""The bridge scores a retrieval task exactly as mteb's own SentenceTransformer run does.

The cheap form of the MiniLM reproduction (benchmarks/mteb_reproduce.py runs the real model on
CMRC 2018 and CoSQA): a tiny random sentence-transformers model, a BEIR folder from the fixtures
wrapped as an offline mteb task, mteb's ``SentenceTransformerEncoderWrapper`` against
:class:`finesift.eval.mteb.MTEBEncoder` over finesift's sentence-transformers backend.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from finesift import load_embedder
from finesift.eval.mteb import MTEBEncoder

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "beir" / "tiny-en"
SCORES = ("ndcg_at_10", "recall_at_100", "map_at_10", "mrr_at_10")


@pytest.mark.slow
# mteb's wrapper calls a sentence-transformers method that newer releases renamed (a FutureWarning)
@pytest.mark.filterwarnings("ignore:The `get_sentence_embedding_dimension` method:FutureWarning")
def test_bridge_equals_mteb_sentence_transformer_run(tmp_path: Path) -> None:
    if importlib.util.find_spec("mteb") is None:
        pytest.skip("mteb is not installed (the mteb extra, not in [all,dev]: it pulls datasets)")
    from mteb.models import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    from finesift.eval.mteb_local import beir_task
    from finesift.testing.st_models import build_st_model

    path = build_st_model(tmp_path / "st")
    reference = SentenceTransformerEncoderWrapper(SentenceTransformer(str(path), device="cpu"))
    bridge = MTEBEncoder(load_embedder(str(path), backend="sentence-transformers", device="cpu"))
    theirs = _scores(reference, beir_task(FIXTURE, split="test"))
    ours = _scores(bridge, beir_task(FIXTURE, split="test"))
    for name in SCORES:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-6), name
    assert 0 < ours["ndcg_at_10"] < 1


def _scores(model: Any, task: Any) -> dict[str, Any]:
    import mteb

    results = mteb.evaluate(model, [task], cache=None, show_progress_bar=False)
    (split,) = results.task_results[0].scores.values()
    return dict(split[0])
