"""Reranker SFT on the tiny Qwen3 reranker: the loss, the gain, the checkpoint, resume, negatives."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from finesift import load_embedder, load_reranker
from finesift.errors import Conflict
from finesift.testing.reference import ReferenceReranker
from finesift.train.config import TrainResult
from finesift.train.data import load_pairs
from finesift.train.rerank_negatives import mine_negatives
from finesift.train.reranker import RerankerTrainConfig, build_examples, train_reranker

PAIRS = [
    ("how do I reset my password", "Open settings, choose security and click reset password."),
    ("when are expense reports due", "Expense reports are due on the fifth working day of the month."),
    ("how many vacation days do I get", "Employees accrue two vacation days per month of service."),
    ("which port does the service listen on", "The service listens on port 8080 after docker compose up."),
    ("how long do sessions last", "Sessions expire after thirty minutes without activity."),
    ("who approves travel", "Travel is approved by the team lead before booking."),
]


DISTRACTORS = [
    "The cafeteria serves lunch from noon until two.",
    "Printers are on the third floor near the stairs.",
    "Parking permits are renewed every January.",
    "The library closes at six on Fridays.",
    "Plants in the lobby are watered on Mondays.",
    "The gym offers yoga classes twice a week.",
]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    """Six pairs, each with one distractor negative of its own."""
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"query": q, "positive": d, "negatives": [n]} for (q, d), n in zip(PAIRS, DISTRACTORS, strict=True)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    return path


def gap(model: Path, data, negatives) -> float:
    """Mean reference P(yes) of positives minus that of negatives (model-card code, one pair a call)."""
    ref = ReferenceReranker(str(model))
    pos = [ref.score(p.query, [p.positive])[0] for p in data.pairs]
    neg = [ref.score(p.query, [n])[0] for p, negs in zip(data.pairs, negatives, strict=True) for n in negs]
    return float(np.mean(pos) - np.mean(neg))


def test_mined_negatives_exclude_positives(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"query": q, "positive": d}) + "\n" for q, d in PAIRS), "utf-8")
    data = load_pairs(path)
    for embedder in (None, load_embedder("fake")):
        negatives = mine_negatives(data, 2, embedder=embedder)
        assert all(len(n) == 2 for n in negatives)
        for pair, negs in zip(data.pairs, negatives, strict=True):
            assert pair.positive not in negs and len(set(negs)) == 2
    # BM25 ranks a text sharing the query's words first.
    bm25 = mine_negatives(data, 1, embedder=None)
    examples = build_examples(data, bm25)
    assert len(examples) == 2 * len(PAIRS) and sum(e.label for e in examples) == len(PAIRS)


@pytest.mark.slow
def test_sft_raises_p_yes_of_positives_and_saves_a_plain_checkpoint(
    data_file: Path, tiny_reranker_model: Path, tmp_path: Path
) -> None:
    data = load_pairs(data_file)
    negatives = [p.negatives for p in data.pairs]
    before = gap(tiny_reranker_model, data, negatives)
    out = tmp_path / "rr"
    config = RerankerTrainConfig(
        model=str(tiny_reranker_model),
        out=out,
        lr=3e-3,
        batch_size=6,
        epochs=10,
        warmup_ratio=0.0,
        negatives=1,
    )
    result = train_reranker(data, config)
    assert result.steps == 20 and result.loss_end < result.loss_start
    assert gap(out, data, negatives) > before + 0.3

    from transformers import AutoModelForCausalLM, Qwen3ForCausalLM

    assert isinstance(AutoModelForCausalLM.from_pretrained(str(out)), Qwen3ForCausalLM)
    lineage = json.loads((out / "finesift-lineage.json").read_text())
    assert (
        lineage["base_model"] == str(tiny_reranker_model)
        and lineage["data"]["fingerprint"] == data.fingerprint
    )
    assert lineage["loss"]["steps"] == 20 and lineage["hyper_parameters"]["lora"] is True
    assert lineage["finesift_version"]
    # finesift's reranker computes what the model card's code computes on the tuned weights.
    ours = load_reranker(str(out), dtype="float32", device="cpu")
    ref = ReferenceReranker(str(out))
    query, docs = PAIRS[0][0], [d for _, d in PAIRS]
    np.testing.assert_allclose(ours.score(query, docs), [ref.score(query, [d])[0] for d in docs], atol=1e-5)


def test_lora_is_merged_and_resume_continues_the_same_run(
    data_file: Path, tiny_reranker_model: Path, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    def config(out: Path, resume: bool = False) -> RerankerTrainConfig:
        return RerankerTrainConfig(
            model=str(tiny_reranker_model), out=out, lr=5e-3, batch_size=4, epochs=2, max_steps=4,
            save_steps=2, lora_rank=4, negatives=1, resume=resume,
        )  # fmt: skip

    straight = tmp_path / "straight"
    train_reranker(data_file, config(straight))

    class Killed(Exception):
        pass

    def die_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise Killed

    broken = tmp_path / "broken"
    with pytest.raises(Killed):
        train_reranker(data_file, config(broken), on_step=die_at_3)
    assert (broken / "checkpoint-2").is_dir() and not (broken / "checkpoint-4").exists()
    result = train_reranker(data_file, config(broken, resume=True))
    assert result.resumed_from == 2 and result.steps == 4
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(broken / "model.safetensors"))
    assert not any("lora" in k for k in a) and a.keys() == b.keys()
    base = load_file(str(tiny_reranker_model / "model.safetensors"))
    assert any(not np.array_equal(a[k], base[k]) for k in base)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=key)
    with pytest.raises(Conflict, match="not empty"):
        train_reranker(data_file, config(straight))


def test_full_fine_tuning_changes_every_kind_of_weight(
    data_file: Path, tiny_reranker_model: Path, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    out = tmp_path / "full"
    config = RerankerTrainConfig(
        model=str(tiny_reranker_model), out=out, lora=False, lr=1e-3, batch_size=4, max_steps=2, negatives=1
    )
    result = train_reranker(data_file, config)
    assert result.steps == 2
    tuned, base = (
        load_file(str(out / "model.safetensors")),
        load_file(str(tiny_reranker_model / "model.safetensors")),
    )
    assert tuned.keys() == base.keys()
    changed = [k for k in base if not np.array_equal(tuned[k], base[k])]
    assert any("mlp" in k for k in changed) and any("norm" in k for k in changed)
    assert json.loads((out / "finesift-lineage.json").read_text())["hyper_parameters"]["lora"] is False


def test_cli_trains_on_a_synth_folder(tiny_reranker_model: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import sys

    from finesift.answer.llm import ChatClient
    from finesift.cli.app import main
    from finesift.settings import LLMSettings
    from finesift.testing.synth_chat import synth_chat_server
    from finesift.train.passages import Passage
    from finesift.train.personas import bundled_personas
    from finesift.train.synth import SynthConfig, synthesize

    passages = [Passage(f"d{n}", d) for n, (_, d) in enumerate(PAIRS)] + [
        Passage(f"x{n}", d) for n, d in enumerate(DISTRACTORS)
    ]
    with synth_chat_server() as (url, _), ChatClient(LLMSettings(url=url, model="m")) as chat:
        synthesize(
            passages, embedder=load_embedder("fake"), complete=chat.complete, personas=bundled_personas(),
            out=tmp_path / "pairs", config=SynthConfig(min_cosine=0.3),
        )  # fmt: skip
    args = [str(tmp_path / "pairs"), "--model", str(tiny_reranker_model), "--out", str(tmp_path / "rr")]
    flags = [
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--negatives",
        "1",
        "--embedding-model",
        "fake",
        "--json",
    ]
    monkeypatch.setattr(sys, "argv", ["finesift", "train", "reranker", *args, *flags, "--no-progress"])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    assert exited.value.code == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 2 and summary["loss_start"] > 0 and summary["examples_per_s"] > 0
    assert summary["examples"] == 8  # trained: 2 steps of 4, not every example built
    embedding_fields = {f.name for f in dataclasses.fields(TrainResult)}  # the embedding command's summary
    assert set(summary) == embedding_fields and summary["resumed_from"] == 0
    lineage = json.loads((tmp_path / "rr" / "finesift-lineage.json").read_text())
    assert lineage["data"]["split"] == "train" and lineage["hyper_parameters"]["embedding_model"] == "fake"
    scores = load_reranker(str(tmp_path / "rr"), dtype="float32", device="cpu").score(
        PAIRS[0][0], [PAIRS[0][1]]
    )
    assert 0.0 <= scores[0] <= 1.0
    monkeypatch.setattr(sys, "argv", ["finesift", "train", "reranker", *args, "--max-steps", "0"])
    with pytest.raises(SystemExit) as refused:
        main()
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "--max-steps" in err and err.count("\n") == 1


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_gradient_checkpointing_trains_without_deprecation_warnings(
    data_file: Path, tiny_reranker_model: Path, tmp_path: Path, lora: bool
) -> None:
    """Recomputed activations under the installed transformers' own name (warnings are errors here)."""
    config = RerankerTrainConfig(
        model=str(tiny_reranker_model), out=tmp_path / "gc", lora=lora, lr=1e-3, batch_size=4, max_steps=1,
        negatives=1, gradient_checkpointing=True,
    )  # fmt: skip
    result = train_reranker(data_file, config)
    assert result.steps == 1 and np.isfinite(result.loss_start)
