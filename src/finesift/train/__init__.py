"""Adapting the models to a user's corpus: training data, the embedding loss, fine-tuning, merging.

Sits at the layer of ``eval``: it may import embedding, rerank, runtime, hub, ingest, kb and eval;
nothing below imports it. Heavy libraries (torch, peft) are imported only inside the functions that
train or merge.
"""

from finesift.train.config import EmbeddingTrainConfig, TrainResult
from finesift.train.data import TrainData, TrainPair, load_pairs
from finesift.train.embedding import train_embedding
from finesift.train.merge import MergeResult, merge_checkpoints
from finesift.train.reranker import RerankerTrainConfig, RerankerTrainResult, train_reranker
from finesift.train.synth import SynthConfig, synthesize
from finesift.train.synth_output import SynthReport

__all__ = [
    "EmbeddingTrainConfig",
    "MergeResult",
    "RerankerTrainConfig",
    "RerankerTrainResult",
    "SynthConfig",
    "SynthReport",
    "TrainData",
    "TrainPair",
    "TrainResult",
    "load_pairs",
    "merge_checkpoints",
    "synthesize",
    "train_embedding",
    "train_reranker",
]
