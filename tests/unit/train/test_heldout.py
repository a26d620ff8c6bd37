"""The held-out dev split: passage-disjoint by construction, scored like a plain re-implementation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from finesift.errors import InvalidRequest
from finesift.train.data import TrainData, TrainPair, fingerprint
from finesift.train.heldout import (
    DevSpec,
    embedder_score,
    rerank_candidates,
    reranker_score,
    split_by_passage,
)


def _data() -> TrainData:
    """12 passages, two questions each; pair 0 names passage 5 as its negative."""
    corpus = [f"passage {i} about topic{i} with words w{i} v{i}" for i in range(12)]
    pairs = [
        TrainPair(f"question {j} on topic{i} w{i}", corpus[i], (corpus[5],) if i == 0 and j == 0 else ())
        for i in range(12)
        for j in range(2)
    ]
    return TrainData(tuple(pairs), tuple(corpus), fingerprint(pairs, corpus), "mem", "train")


def test_split_is_by_passage_and_nothing_of_dev_is_trained_on() -> None:
    data = _data()
    train, dev = split_by_passage(data, 0.25, seed=3)
    held = {p.positive for p in dev.pairs}
    assert len(held) == 3 and len(dev.pairs) == 6 and len(train.pairs) == 18
    assert not held & {p.positive for p in train.pairs}
    assert not held & set(train.corpus) and dev.corpus == data.corpus
    assert not held & {n for p in train.pairs for n in p.negatives}
    assert train.fingerprint == fingerprint(list(train.pairs), list(train.corpus))
    again, _ = split_by_passage(data, 0.25, seed=3)
    other, _ = split_by_passage(data, 0.25, seed=4)
    assert again == train and other.pairs != train.pairs
    tiny, _ = split_by_passage(data, 0.01, seed=0)  # at least one passage, never all
    assert len(tiny.pairs) == 22
    most, rest = split_by_passage(data, 0.99, seed=0)
    assert len({p.positive for p in most.pairs}) == 1 and len(rest.pairs) == 22


def test_split_refusals(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="--dev or --dev-fraction, not both"):
        DevSpec(path=tmp_path, fraction=0.2)
    with pytest.raises(InvalidRequest, match=r"--dev-fraction must lie in \[0, 1\)"):
        DevSpec(fraction=1.0)
    one = TrainData((TrainPair("q", "p"),), ("p",), "x", "mem")
    with pytest.raises(InvalidRequest, match="at least two distinct positive passages"):
        split_by_passage(one, 0.5, seed=0)


def _ndcg10(ranked: list[int], relevant: set[int]) -> float:
    dcg = sum(1 / math.log2(r + 2) for r, d in enumerate(ranked[:10]) if d in relevant)
    return dcg / sum(1 / math.log2(r + 2) for r in range(min(10, len(relevant))))


class _Encoder:
    """The two attributes of a TrainableEncoder the scorer uses, over the fake embedder."""

    def __init__(self, embedder) -> None:
        import torch

        self.embedder, self.modules = embedder, torch.nn.Linear(1, 1)


def test_embedder_score_is_mean_ndcg10_over_the_whole_corpus(fake_embedder) -> None:
    pytest.importorskip("torch")
    _, dev = split_by_passage(_data(), 0.5, seed=1)
    got = embedder_score(_Encoder(fake_embedder), dev)
    queries = list(dict.fromkeys(p.query for p in dev.pairs))
    docs = np.asarray(fake_embedder.embed_documents(list(dev.corpus)))
    scores = np.asarray(fake_embedder.embed_queries(queries)) @ docs.T
    want = [
        _ndcg10(
            [int(i) for i in np.argsort(-scores[n], kind="stable")],
            {dev.corpus.index(p.positive) for p in dev.pairs if p.query == q},
        )
        for n, q in enumerate(queries)
    ]
    assert got == pytest.approx(sum(want) / len(want), abs=1e-6) and 0 < got <= 1


def test_reranker_score_reorders_positives_among_hard_negatives() -> None:
    from finesift import load_reranker

    _, dev = split_by_passage(_data(), 0.5, seed=1)
    candidates = rerank_candidates(dev, seed=0)
    for query, texts in candidates.items():
        positives = {p.positive for p in dev.pairs if p.query == query}
        assert positives <= set(texts) and len(texts) == len(positives) + 9
    reranker = load_reranker("fake")
    want = []
    for query, texts in candidates.items():
        scores = reranker.score(query, texts)
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        relevant = {
            i for i, t in enumerate(texts) if any(p.query == query and p.positive == t for p in dev.pairs)
        }
        want.append(_ndcg10(order, relevant))
    assert reranker_score(reranker, dev, candidates) == pytest.approx(sum(want) / len(want), abs=1e-6)


@pytest.mark.slow
def test_train_cli_reports_dev_before_and_after_for_both_trainers(
    tiny_embedding_model: Path, tiny_reranker_model: Path, tiny_en: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from finesift.cli.app import app

    common = ["--split", "test", "--full", "--max-steps", "1", "--lr", "1e-3", "--precision", "fp32"]
    common += ["--max-length", "160", "--no-progress", "--dev-fraction", "0.3", "--json"]
    runner = CliRunner()
    for kind, model in (("embedding", tiny_embedding_model), ("reranker", tiny_reranker_model)):
        out = tmp_path / kind
        args = ["train", kind, str(tiny_en), "--model", str(model), "--out", str(out), *common]
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        dev = json.loads(done.stdout.strip().splitlines()[-1])["dev"]
        assert dev["metric"] == "ndcg@10" and dev["queries"] >= 1 and dev["overlapping_passages"] == 0
        assert 0 <= dev["before"] <= 1 and 0 <= dev["after"] <= 1
        assert dev["gain"] == pytest.approx(dev["after"] - dev["before"], abs=1e-6)
        lineage = json.loads((out / "finesift-lineage.json").read_text())
        assert lineage["dev"] == dev and "train part" in json.dumps(lineage["data"])
