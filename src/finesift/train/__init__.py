"""Adapting the models to a user's corpus: training data, the embedding loss, fine-tuning, merging.

Sits at the layer of ``eval``: it may import embedding, rerank, runtime, hub, ingest, kb and eval;
nothing below imports it. Heavy libraries (torch, peft) are imported only inside the functions that
train or merge.
"""

from finesift.train.config import EmbeddingTrainConfig, TrainResult
from finesift.train.data import TrainData, TrainPair, load_pairs
from finesift.train.embedding import train_embedding
from finesift.train.merge import MergeResult, merge_checkpoints

__all__ = [
    "EmbeddingTrainConfig",
    "MergeResult",
    "TrainData",
    "TrainPair",
    "TrainResult",
    "load_pairs",
    "merge_checkpoints",
    "train_embedding",
]
