"""The FollowIR and MLDR task sets: selectable, p-MRR through mteb offline, the document window."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pytest

from finesift import load_embedder
from finesift.embedding.embedder import Embedder
from finesift.errors import InvalidRequest
from finesift.eval.mteb import MTEBEncoder
from finesift.eval.mteb_sets import (
    SET_SETTINGS,
    TASK_SETS,
    DocumentWindowEmbedder,
    evaluate_followir,
    expand_task_names,
    set_encoder,
)

WORDS = [f"word{i}" for i in range(40)]


def needs_mteb() -> None:
    if importlib.util.find_spec("mteb") is None:
        pytest.skip("mteb is not installed (the mteb extra, not in [all,dev]: it pulls datasets)")


def test_set_names_expand_to_their_tasks() -> None:
    assert expand_task_names(["FollowIR", "SciFact", "mldr", "Core17InstructionRetrieval"]) == [
        *TASK_SETS["followir"],
        "SciFact",
        "MultiLongDocRetrieval",
    ]
    assert SET_SETTINGS["followir"].main_score == "p-MRR"
    assert SET_SETTINGS["mldr"].max_length == 8192  # the Qwen3 evaluation's window


@pytest.mark.slow
def test_the_sets_are_mteb_tasks() -> None:
    needs_mteb()
    from finesift.eval.mteb_sets import set_tasks

    followir = set_tasks("followir")
    assert sorted(t.metadata.name for t in followir) == sorted(TASK_SETS["followir"])
    assert {t.metadata.main_score for t in followir} == {"p-MRR"}
    (mldr,) = set_tasks("mldr")
    assert mldr.metadata.name == "MultiLongDocRetrieval"
    assert mldr.eval_splits == ["test"]
    with pytest.raises(InvalidRequest, match="the sets are: followir, mldr"):
        set_tasks("beir")


def test_documents_are_cut_at_the_window_and_queries_never() -> None:
    embedder = load_embedder("fake", max_length=16)
    with pytest.raises(InvalidRequest, match="load it with max_length=8192"):
        set_encoder(embedder, "mldr")
    plain = load_embedder("fake", max_length=32)
    windowed = DocumentWindowEmbedder(plain, 32)
    long_doc = " ".join(WORDS)
    cut = windowed.encode([long_doc, "short document"], input_type="document").vectors
    np.testing.assert_allclose(cut[0], plain.embed_documents([" ".join(WORDS[:31])])[0])
    assert windowed.truncated_documents == 1
    assert windowed.embed_queries(["word1 word2"]).shape == (1, 64)
    with pytest.raises(InvalidRequest, match="a query is never truncated here, only documents"):
        windowed.embed_queries([long_doc])


@pytest.mark.slow
def test_an_mldr_run_cuts_only_documents() -> None:
    needs_mteb()
    from finesift.eval.mteb_local import LocalData, local_retrieval_task

    model = set_encoder(load_embedder("fake", max_length=24), "mldr", max_length=24)
    # d1's relevant words sit past the window: cut there, it loses to d2
    corpus = {"d1": " ".join([*WORDS[:30], "target", "answer"]), "d2": "target answer unrelated"}
    task = local_retrieval_task("TinyMLDR", LocalData(corpus, {"q": "target answer"}, {"q": {"d1": 1}}))
    result = _evaluate(model, task)
    assert model.embedder.truncated_documents == 1  # type: ignore[attr-defined]
    assert result["ndcg_at_1"] == 0.0


def followir_task() -> Any:
    from finesift.eval.mteb_local import LocalData, LocalQuery, local_retrieval_task

    corpus = {"d1": "apple orchard harvest", "d2": "pear orchard harvest", "d3": "banana plantation"}
    queries = {
        "q1-og": LocalQuery("fruit", "apple orchard"),
        "q1-changed": LocalQuery("fruit", "pear orchard"),
    }
    qrels = {"q1-og": {"d1": 1, "d2": 0, "d3": 0}, "q1-changed": {"d1": 0, "d2": 1, "d3": 0}}
    top = {q: ["d1", "d2", "d3"] for q in queries}
    data = LocalData(corpus, queries, qrels, top_ranked=top, changed_qrels={"q1": ["d1"]})
    return local_retrieval_task("TinyFollowIR", data)


class InstructionModel(MTEBEncoder):
    """Queries as ``sign`` x the instruction plus the bare query: 1 follows, 0 ignores, -1 defies it."""

    def __init__(self, embedder: Embedder, sign: float) -> None:
        super().__init__(embedder)
        self.sign = sign

    def encode(
        self, inputs: Iterable[Mapping[str, Any]], *, prompt_type: Any = None, **kwargs: Any
    ) -> np.ndarray:
        if getattr(prompt_type, "value", prompt_type) != "query":
            return super().encode(inputs, prompt_type=prompt_type, **kwargs)
        batches = list(inputs)
        bare = self.embedder.embed_documents([q for b in batches for q in b["query"]])
        told = self.embedder.embed_documents([i for b in batches for i in b["instruction"]])
        return np.asarray(bare + self.sign * told, dtype=np.float32)


@pytest.mark.slow
@pytest.mark.parametrize(("sign", "expected"), [(1.0, "positive"), (0.0, "zero"), (-1.0, "negative")])
def test_p_mrr_sign_follows_the_altered_instruction(sign: float, expected: str) -> None:
    needs_mteb()
    scores = evaluate_followir(InstructionModel(load_embedder("fake"), sign), [followir_task()], cache=None)
    p_mrr = scores["TinyFollowIR"]
    assert {"positive": p_mrr > 0, "zero": p_mrr == 0, "negative": p_mrr < 0}[expected], p_mrr


@pytest.mark.slow
def test_the_bridge_follows_the_instruction_mteb_appends() -> None:
    needs_mteb()
    # 1024 hash buckets: the default instruction's words collide with none of the task's
    scores = evaluate_followir(MTEBEncoder(load_embedder("fake:1024")), [followir_task()], cache=None)
    assert scores["TinyFollowIR"] > 0
    with pytest.raises(InvalidRequest, match="not a FollowIR-style task"):
        evaluate_followir(MTEBEncoder(load_embedder("fake")), [_tiny_retrieval()])


def _tiny_retrieval() -> Any:
    from finesift.eval.mteb_local import LocalData, local_retrieval_task

    return local_retrieval_task("TinyRetrieval", LocalData({"d": "x"}, {"q": "x"}, {"q": {"d": 1}}))


def _evaluate(model: Any, task: Any) -> dict[str, Any]:
    import mteb

    results = mteb.evaluate(model, [task], cache=None, show_progress_bar=False)
    (split,) = results.task_results[0].scores.values()
    return dict(split[0])


def test_the_mteb_command_runs_a_task_set_at_its_window_unless_max_length_says() -> None:
    from finesift.cli.mteb import set_window

    assert set_window("mldr", None) == 8192
    assert set_window("mldr", 4096) == 4096
    assert set_window("MTEB(eng, v2)", None) is None
    assert set_window(None, None) is None
