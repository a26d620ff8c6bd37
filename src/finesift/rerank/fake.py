"""A deterministic, dependency-free reranker: the share of query features found in the document."""

from __future__ import annotations

import math
from collections.abc import Sequence

from finesift.errors import InvalidRequest
from finesift.fakes import features
from finesift.hub import is_fake_model
from finesift.rerank.base import RerankOutput
from finesift.settings import HubSettings, RerankSettings


class FakeReranker:
    """score = sigmoid(8 · (overlap − 0.4)), overlap = |q ∩ d| / |q| over word features."""

    def __init__(self, *, max_length: int = 8192, model: str = "fake") -> None:
        self._max_length = max_length
        self._model = model
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def max_length(self) -> int:
        return self._max_length

    def fingerprint(self) -> dict[str, object]:
        return {"model": self._model, "revision": "1", "prompt": "overlap", "max_length": self._max_length}

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        self.calls += 1
        wanted = set(features(query))
        scores, tokens = [], []
        for doc in documents:
            have = set(features(doc))
            overlap = len(wanted & have) / max(len(wanted), 1)
            scores.append(1.0 / (1.0 + math.exp(-8.0 * (overlap - 0.4))))
            tokens.append(len(features(query)) + len(features(doc)) + 1)
        return RerankOutput(scores, tokens, 0)


def create(settings: RerankSettings, hub: HubSettings) -> FakeReranker:
    """Registry factory: model ``fake`` or ``fake:NAME`` (the name is only a label, as for the embedder)."""
    if not is_fake_model(settings.model):
        raise InvalidRequest(f"fake reranker model must be 'fake' or 'fake:NAME', not {settings.model!r}")
    return FakeReranker(max_length=settings.max_length, model=settings.model)
