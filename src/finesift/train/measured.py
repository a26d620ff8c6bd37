"""``train`` with a held-out dev split: score the model before, train on the rest, score what was saved.

Wraps the two trainers without changing them: the dev split is made (or read) here, the trainer gets
the training part as :class:`TrainData`, and the ``dev`` section (see :mod:`finesift.train.heldout`)
goes into the :class:`TrainResult` and the saved model's ``finesift-lineage.json``. Without a dev
split, the trainers are called exactly as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finesift.settings import HubSettings
from finesift.train import heldout
from finesift.train.checkpoint import LINEAGE, write_json
from finesift.train.config import EmbeddingTrainConfig, TrainResult
from finesift.train.data import load_pairs
from finesift.train.distributed import launched_rank

if TYPE_CHECKING:
    from finesift.embedding.embedder import Embedder
    from finesift.train.reranker import RerankerTrainConfig


def train_embedding_measured(
    data: str | Path, config: EmbeddingTrainConfig, spec: heldout.DevSpec, *, hub: HubSettings | None = None
) -> TrainResult:
    """:func:`~finesift.train.embedding.train_embedding`, scored on the dev split ``spec`` names."""
    from finesift.train.embedding import train_embedding

    if not spec.enabled:
        return train_embedding(data, config, hub=hub)
    hub = hub or HubSettings()
    config.check()
    loaded = load_pairs(Path(data), config.split, skip_empty=config.skip_empty)
    train, dev = heldout.prepare(loaded, spec, config.seed)
    assert dev is not None  # spec.enabled
    if launched_rank() != 0:  # a data-parallel run: rank 0 alone scores and records the dev split
        return train_embedding(train, config, hub=hub)
    before = _embedder_score(config.model, config, dev, hub)
    result = train_embedding(train, config, hub=hub)
    after = _embedder_score(str(config.out), config, dev, hub)
    return _with_dev(result, config.out, heldout.report(
        before, after, dev, source=dev.source, overlapping=heldout.overlap(train, dev)
    ))  # fmt: skip


def train_reranker_measured(
    data: str | Path,
    config: RerankerTrainConfig,
    spec: heldout.DevSpec,
    *,
    embedder: Embedder | None = None,
    hub: HubSettings | None = None,
) -> TrainResult:
    """:func:`~finesift.train.reranker.train_reranker`, scored on the dev split ``spec`` names."""
    from finesift.train.reranker import train_reranker

    if not spec.enabled:
        return train_reranker(data, config, embedder=embedder, hub=hub)
    hub = hub or HubSettings()
    config.check()
    loaded = load_pairs(Path(data), config.split)
    train, dev = heldout.prepare(loaded, spec, config.seed)
    assert dev is not None  # spec.enabled
    if launched_rank() != 0:  # a data-parallel run: rank 0 alone scores and records the dev split
        return train_reranker(train, config, embedder=embedder, hub=hub)
    candidates = heldout.rerank_candidates(dev, config.seed)
    before = _reranker_score(config.model, config, dev, candidates, hub)
    result = train_reranker(train, config, embedder=embedder, hub=hub)
    after = _reranker_score(str(config.out), config, dev, candidates, hub)
    return _with_dev(result, config.out, heldout.report(
        before, after, dev, source=dev.source, overlapping=heldout.overlap(train, dev)
    ))  # fmt: skip


def _embedder_score(model: str, config: EmbeddingTrainConfig, dev: Any, hub: HubSettings) -> float:
    from finesift.train.encoder import open_encoder

    encoder = open_encoder(
        model, device=config.device, max_length=config.max_length, instruction=config.instruction, hub=hub
    )
    return heldout.embedder_score(encoder, dev)


def _reranker_score(
    model: str, config: RerankerTrainConfig, dev: Any, candidates: dict[str, list[str]], hub: HubSettings
) -> float:
    from finesift.rerank.factory import build_reranker
    from finesift.settings import RerankSettings

    settings = RerankSettings(
        model=model, device=config.device, dtype="float32", instruction=config.instruction,
        max_length=config.max_length,
    )  # fmt: skip
    return heldout.reranker_score(build_reranker(settings, hub), dev, candidates)


def _with_dev(result: TrainResult, out: Path, dev: dict[str, Any]) -> TrainResult:
    """``result`` with its dev section, which the saved model's lineage records as well."""
    result.dev = dev
    lineage = out / LINEAGE
    if lineage.is_file():
        record = json.loads(lineage.read_text(encoding="utf-8"))
        write_json(lineage, {**record, "dev": dev})
    return result
