"""A LoRA run saves the fine-tuned model (merged), for every family training accepts, and resumes exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from safetensors.torch import load_file

from finesift import load_embedder
from finesift.train.checkpoint import transformer_dir
from finesift.train.embedding import EmbeddingTrainConfig, train_embedding

TEXTS = ["how do I cook pasta", "the lock on the thread", "water boils at one hundred degrees"]


@pytest.fixture(params=["sentence-transformers", "qwen3"])
def base_model(request: pytest.FixtureRequest) -> Path:
    """The BERT-style sentence-transformers model (MiniLM's family) and the tiny Qwen3-Embedding."""
    if request.param == "sentence-transformers":
        pytest.importorskip("sentence_transformers")
        return Path(request.getfixturevalue("tiny_st_model"))
    return Path(request.getfixturevalue("tiny_embedding_model"))


def _config(base: Path, out: Path, *, resume: bool = False) -> EmbeddingTrainConfig:
    return EmbeddingTrainConfig(
        model=str(base), out=out, split="test", batch_size=8, max_steps=2, save_steps=1, lr=1e-2,
        hard_negatives=0, precision="fp32", progress=False, max_length=64, resume=resume,
    )  # fmt: skip


def _weights(model_dir: Path) -> dict:
    found = {}
    for file in sorted((model_dir / transformer_dir(model_dir)).glob("*.safetensors")):
        found.update(load_file(str(file)))
    return found


def test_lora_run_saves_merged_weights_that_change_the_embeddings_and_resumes(
    base_model: Path, tiny_en: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lora"
    train_embedding(tiny_en, _config(base_model, out))  # --lora is the default
    base = _weights(base_model)
    for saved in (out, out / "checkpoint-1"):
        weights = _weights(saved)
        assert set(weights) == set(base), "a saved folder holds exactly the base's tensor names"
        assert any(not np.array_equal(weights[k].numpy(), base[k].numpy()) for k in base)
    before = load_embedder(str(base_model), dtype="float32", device="cpu").embed_documents(TEXTS)
    after = load_embedder(str(out), dtype="float32", device="cpu").embed_documents(TEXTS)
    cos = (before * after).sum(axis=1) / np.linalg.norm(before, axis=1) / np.linalg.norm(after, axis=1)
    assert cos.min() < 0.9999, "the saved model embeds exactly as the base did: LoRA was not merged"
    _resume_reaches_the_same_weights(base_model, tiny_en, out)


def test_sentence_transformers_loads_the_lora_output_without_unexpected_keys(
    tiny_st_model: Path, tiny_en: Path, tmp_path: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "lora"
    train_embedding(tiny_en, _config(tiny_st_model, out))
    model = SentenceTransformer(str(out), device="cpu")
    loaded = set(model[0].auto_model.state_dict())
    assert not [k for k in loaded if "lora_" in k or "base_layer" in k]
    assert set(_weights(out)) <= loaded | {k for k in _weights(tiny_st_model) if "position_ids" in k}
    theirs = model.encode(TEXTS, normalize_embeddings=True)
    ours = load_embedder(str(out), dtype="float32", device="cpu").embed_documents(TEXTS)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def _resume_reaches_the_same_weights(base_model: Path, tiny_en: Path, out: Path) -> None:
    """--resume from a LoRA checkpoint-1 trains step 2 again and ends at the uninterrupted weights."""
    uninterrupted = _weights(out)
    shutil.rmtree(out / "checkpoint-2")  # as if killed after checkpoint-1
    result = train_embedding(tiny_en, _config(base_model, out, resume=True))
    assert result.resumed_from == 1 and result.steps == 2
    resumed = _weights(out)
    for key, value in uninterrupted.items():
        np.testing.assert_allclose(resumed[key].numpy(), value.numpy(), atol=1e-5, err_msg=key)
