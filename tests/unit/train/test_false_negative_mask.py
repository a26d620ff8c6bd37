"""The trainer hands the loss the false-negative text masks: identical texts in a batch are no negatives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

from finesift.train import contrastive  # noqa: E402
from finesift.train.embedding import EmbeddingTrainConfig, train_embedding  # noqa: E402
from finesift.train.loss import info_nce  # noqa: E402

SHARED = "water boils at one hundred degrees"
PAIRS = [
    {"query": "when does water boil", "positive": SHARED, "negatives": ["cook the pasta in water"]},
    {"query": "boiling point of water", "positive": SHARED, "negatives": ["a lock on the thread"]},
    {"query": "how to cook pasta", "positive": "cook the pasta in water", "negatives": [SHARED]},
    {"query": "thread lock", "positive": "a lock on the thread", "negatives": ["a lock on the thread"]},
]


def test_identical_texts_in_a_training_batch_are_masked(
    tiny_st_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS), encoding="utf-8")
    seen: list[dict] = []

    def spy(q, p, n=None, **masks):
        seen.append({"q": q.detach(), "p": p.detach(), "n": None if n is None else n.detach(), **masks})
        return info_nce(q, p, n, **masks)

    monkeypatch.setattr(contrastive, "info_nce", spy)  # the step logic lives in contrastive.py
    config = EmbeddingTrainConfig(
        model=str(tiny_st_model), out=tmp_path / "out", batch_size=len(PAIRS), max_steps=1, hard_negatives=1,
        lr=1e-3, precision="fp32", progress=False, save=False, max_length=64,
    )  # fmt: skip
    train_embedding(data, config)
    (call,) = seen
    order = _batch_order(config)
    positives = [PAIRS[i]["positive"] for i in order]
    negatives = [PAIRS[i]["negatives"][0] for i in order]
    expected_same = torch.tensor([[a == b for b in positives] for a in positives])
    expected_neg = torch.tensor([[neg == pos] for pos, neg in zip(positives, negatives, strict=True)])
    assert call["same_positive"] is not None and torch.equal(call["same_positive"].cpu(), expected_same)
    assert call["negative_is_positive"] is not None
    assert torch.equal(call["negative_is_positive"].cpu(), expected_neg)
    masks = {k: v for k, v in call.items() if k not in ("q", "p", "n")}
    unmasked = {**masks, "same_positive": None, "negative_is_positive": None}
    with_mask = info_nce(call["q"], call["p"], call["n"], **masks)
    without = info_nce(call["q"], call["p"], call["n"], **unmasked)
    assert not torch.allclose(with_mask, without)  # this batch exercises the mask


def _batch_order(config: EmbeddingTrainConfig) -> list[int]:
    from finesift.train.config import batch_schedule

    ((batch,),) = batch_schedule(len(PAIRS), config)
    return batch
