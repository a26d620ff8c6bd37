"""Metrics on hand-made qrels: graded relevance, ties, empty runs, and parity with trec_eval."""

from __future__ import annotations

import math
import random

import pytest

from finesift.errors import InvalidRequest
from finesift.eval.metrics import evaluate, ndcg, parse_metric, trec_order


def log2(x: float) -> float:
    return math.log2(x)


def test_graded_ndcg_by_hand() -> None:
    judged = {"a": 2, "b": 1, "c": 0}
    ranked = ["c", "b", "a"]
    dcg = 1 / log2(3) + 2 / log2(4)
    idcg = 2 / log2(2) + 1 / log2(3)
    assert ndcg(ranked, judged, 10) == pytest.approx(dcg / idcg)


def test_ndcg_cut_uses_all_judged_documents_for_the_ideal() -> None:
    judged = {"a": 1, "b": 1, "c": 1}
    # only one relevant in the top 2; the ideal top 2 has two
    assert ndcg(["a", "x", "b"], judged, 2) == pytest.approx(1 / (1 + 1 / log2(3)))


def test_all_four_metrics_on_a_small_run() -> None:
    qrels = {"q": {"a": 1, "b": 1, "z": 1}}
    run = {"q": {"x": 5.0, "a": 4.0, "y": 3.0, "b": 2.0}}
    scores = evaluate(qrels, run).means
    assert scores["mrr@10"] == pytest.approx(0.5)
    assert scores["recall@100"] == pytest.approx(2 / 3)
    assert scores["map@100"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert scores["ndcg@10"] == pytest.approx((1 / log2(3) + 1 / log2(5)) / (1 + 1 / log2(3) + 1 / log2(4)))


def test_cutoffs_apply() -> None:
    qrels = {"q": {"d11": 1}}
    run = {"q": {f"d{i:02d}": 100.0 - i for i in range(20)}}  # d11 at rank 12
    scores = evaluate(qrels, run, ["mrr@10", "recall@10", "recall@100", "map@10", "precision@20"]).means
    assert scores["mrr@10"] == 0.0
    assert scores["recall@10"] == 0.0
    assert scores["recall@100"] == 1.0
    assert scores["map@10"] == 0.0
    assert scores["precision@20"] == pytest.approx(1 / 20)


def test_ties_are_broken_by_document_id_descending() -> None:
    assert trec_order({"a": 1.0, "c": 1.0, "b": 1.0, "z": 0.5}) == ["c", "b", "a", "z"]
    qrels = {"q": {"a": 1}}
    assert evaluate(qrels, {"q": {"a": 1.0, "b": 1.0}}).means["mrr@10"] == 0.5


def test_empty_and_missing_runs_score_zero_and_still_count() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    result = evaluate(qrels, {"q1": {"a": 1.0}, "q2": {}})
    assert result.queries == 3
    assert result.means["ndcg@10"] == pytest.approx(1 / 3)
    assert result.per_query["ndcg@10"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}


def test_queries_without_positive_judgement_are_dropped_and_counted() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}, "q3": {"c": -1, "d": 0}}
    result = evaluate(qrels, {"q1": {"a": 1.0}, "q2": {"b": 1.0}})
    assert (result.queries, result.dropped) == (1, 2)
    assert result.means["ndcg@10"] == 1.0


def test_negative_judgements_are_not_relevant() -> None:
    qrels = {"q": {"a": -1, "b": 1}}
    scores = evaluate(qrels, {"q": {"a": 2.0, "b": 1.0}}).means
    assert scores["mrr@10"] == 0.5
    assert scores["ndcg@10"] == pytest.approx(1 / log2(3))


def test_no_queries_gives_zero_not_an_error() -> None:
    assert evaluate({}, {}).means["ndcg@10"] == 0.0


@pytest.mark.parametrize("name", ["ndcg", "ndcg@0", "bleu@10", "recall@x"])
def test_unknown_metric_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest, match="NAME@K"):
        parse_metric(name)


def test_matches_pytrec_eval_on_random_graded_runs() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(60)]
    qrels = {
        f"q{i}": {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 12))}
        for i in range(40)
    }
    qrels = {q: j for q, j in qrels.items() if any(v > 0 for v in j.values())}
    # coarse scores force many ties, which trec_eval breaks by document id
    run = {q: {d: float(rng.randint(0, 6)) for d in rng.sample(docs, rng.randint(1, 50))} for q in qrels}
    ours = evaluate(qrels, run, ["ndcg@10", "recall@100", "map@100", "precision@5"]).per_query
    measures = {"ndcg_cut.10", "recall.100", "map_cut.100", "P.5"}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    names = {
        "ndcg@10": "ndcg_cut_10",
        "recall@100": "recall_100",
        "map@100": "map_cut_100",
        "precision@5": "P_5",
    }
    for ours_name, trec_name in names.items():
        for q in qrels:
            assert ours[ours_name][q] == pytest.approx(theirs[q][trec_name], abs=1e-9), (ours_name, q)


def test_mrr_matches_trec_eval_recip_rank_on_the_cut_run() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(3)
    docs = [f"d{i}" for i in range(40)]
    qrels = {f"q{i}": {d: 1 for d in rng.sample(docs, 3)} for i in range(30)}
    run = {q: {d: rng.random() for d in rng.sample(docs, 30)} for q in qrels}
    cut = {q: {d: s for d, s in scores.items() if d in trec_order(scores)[:10]} for q, scores in run.items()}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    ours = evaluate(qrels, run, ["mrr@10"]).per_query["mrr@10"]
    for q in qrels:
        assert ours[q] == pytest.approx(theirs[q]["recip_rank"])
