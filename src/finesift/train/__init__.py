"""Adapting the models to a user's corpus: training data, the embedding loss, fine-tuning, merging.

Sits at the layer of ``eval``: it may import embedding, rerank, runtime, hub, ingest, kb and eval;
nothing below imports it. Heavy libraries (torch, peft) are imported only inside the functions that
train or merge. The names below load on first use, so that importing one submodule (the CLI's
``finesift.train.synth`` for its options) does not import the whole package.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY = {
    "EmbeddingTrainConfig": "finesift.train.config",
    "TrainResult": "finesift.train.config",
    "TrainData": "finesift.train.data",
    "TrainPair": "finesift.train.data",
    "load_pairs": "finesift.train.data",
    "train_embedding": "finesift.train.embedding",
    "DevSpec": "finesift.train.heldout",
    "train_embedding_measured": "finesift.train.measured",
    "train_reranker_measured": "finesift.train.measured",
    "MergeResult": "finesift.train.merge",
    "merge_checkpoints": "finesift.train.merge",
    "merge_models": "finesift.train.merge",
    "RecipeResult": "finesift.train.recipe",
    "load_recipe": "finesift.train.recipe",
    "run_recipe": "finesift.train.recipe",
    "RerankerTrainConfig": "finesift.train.reranker",
    "RerankerTrainResult": "finesift.train.reranker",
    "train_reranker": "finesift.train.reranker",
    "SynthConfig": "finesift.train.synth",
    "synthesize": "finesift.train.synth",
    "SynthReport": "finesift.train.synth_output",
}

if TYPE_CHECKING:
    from finesift.train.config import EmbeddingTrainConfig, TrainResult
    from finesift.train.data import TrainData, TrainPair, load_pairs
    from finesift.train.embedding import train_embedding
    from finesift.train.heldout import DevSpec
    from finesift.train.measured import train_embedding_measured, train_reranker_measured
    from finesift.train.merge import MergeResult, merge_checkpoints, merge_models
    from finesift.train.recipe import RecipeResult, load_recipe, run_recipe
    from finesift.train.reranker import RerankerTrainConfig, RerankerTrainResult, train_reranker
    from finesift.train.synth import SynthConfig, synthesize
    from finesift.train.synth_output import SynthReport

__all__ = [
    "DevSpec",
    "EmbeddingTrainConfig",
    "MergeResult",
    "RecipeResult",
    "RerankerTrainConfig",
    "RerankerTrainResult",
    "SynthConfig",
    "SynthReport",
    "TrainData",
    "TrainPair",
    "TrainResult",
    "load_pairs",
    "load_recipe",
    "merge_checkpoints",
    "merge_models",
    "run_recipe",
    "synthesize",
    "train_embedding",
    "train_embedding_measured",
    "train_reranker",
    "train_reranker_measured",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'finesift.train' has no attribute {name!r}")
    return getattr(import_module(module), name)
