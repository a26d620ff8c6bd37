"""Shared training fixtures: one small fine-tuning run of the tiny Qwen3, reused by several tests."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "beir"


@pytest.fixture(scope="session")
def tiny_en() -> Path:
    return FIXTURES / "tiny-en"


@pytest.fixture(scope="session")
def trained_tiny(tiny_embedding_model: Path, tiny_en: Path, tmp_path_factory: pytest.TempPathFactory):
    """(base, output directory, TrainResult): the tiny Qwen3 fine-tuned (full) on tiny-en's test split."""
    pytest.importorskip("torch")
    from finesift.train.embedding import EmbeddingTrainConfig, train_embedding

    out = tmp_path_factory.mktemp("trained") / "tiny-ft"
    config = EmbeddingTrainConfig(
        model=str(tiny_embedding_model),
        out=out,
        split="test",
        epochs=8,
        batch_size=16,
        lora=False,
        lr=1e-3,
        hard_negatives=1,
        precision="fp32",
        save_steps=4,
        progress=False,
    )
    return tiny_embedding_model, out, train_embedding(tiny_en, config)
