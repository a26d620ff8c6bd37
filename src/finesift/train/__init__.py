"""Adapting the models to a user's corpus: training data, the embedding loss, fine-tuning, merging.

Sits at the layer of ``eval``: it may import embedding, rerank, runtime, hub, ingest, kb and eval;
nothing below imports it. Heavy libraries (torch, peft) are imported only inside the functions that
train or merge.
"""

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
