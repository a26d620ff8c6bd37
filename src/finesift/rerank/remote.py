"""Cohere/Jina-shaped ``/v1/rerank`` endpoints: vLLM, llama-server, TEI-compatible proxies, finesift.

Documents are sent in chunks within the endpoint's limit; scores are put back in input order by
``index``. The Qwen3 instruction travels as an ``instruction`` field only when it differs from the
default (finesift's server honours it; other servers apply their own template and the default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from finesift.errors import BackendError, InvalidRequest
from finesift.rerank.base import RerankOutput
from finesift.rerank.http_remote import HttpRerankerBase
from finesift.rerank.prompts import DEFAULT_INSTRUCTION
from finesift.runtime.http import HttpClient, endpoint_url, in_batches, ordered_by_index
from finesift.settings import HubSettings, RerankSettings

DEFAULT_BATCH_SIZE = 100


def relevance(row: dict[str, Any]) -> float:
    """The score of one result: ``relevance_score`` (Cohere, Jina, vLLM) or ``score``; must be in [0, 1]."""
    value = row.get("relevance_score", row.get("score"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BackendError(
            f"the rerank endpoint returned a result without a numeric relevance_score: {row!r}"[:200]
        )
    score = float(value)
    if not math.isfinite(score):
        raise BackendError(
            "the rerank endpoint returned a non-finite score (NaN/inf); check the server's dtype"
        )
    if not -1e-6 <= score <= 1 + 1e-6:
        raise BackendError(
            f"the rerank endpoint returned score {score:.4g} outside [0, 1]: it sends raw logits; "
            "configure the server to apply the sigmoid (e.g. vLLM's Qwen3 reranker overrides)"
        )
    return min(max(score, 0.0), 1.0)


class RemoteReranker(HttpRerankerBase):
    """P(relevant) per document from a Cohere/Jina-shaped rerank endpoint."""

    backend_name = "remote"
    prompt = "remote"

    def __init__(self, settings: RerankSettings, *, client: HttpClient | None = None) -> None:
        if not settings.url:
            raise InvalidRequest("the remote reranker needs a URL; set --url or FINESIFT_RERANKER__URL")
        super().__init__(settings, url=endpoint_url(settings.url, "/v1/rerank"), client=client)
        self.batch_size = settings.batch_size or DEFAULT_BATCH_SIZE

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        def send(chunk: Sequence[str], offset: int) -> list[tuple[float, int]]:
            return self._send(query, chunk, instruction)

        pairs = in_batches(list(documents), self.batch_size, send)
        return RerankOutput([s for s, _ in pairs], [n for _, n in pairs], 0)

    def _send(self, query: str, chunk: Sequence[str], instruction: str) -> list[tuple[float, int]]:
        payload: dict[str, Any] = {
            "model": self.settings.model,
            "query": query,
            "documents": list(chunk),
            "top_n": len(chunk),
            "return_documents": False,
        }
        if instruction != DEFAULT_INSTRUCTION:
            payload["instruction"] = instruction
        body = self.client.post_json(self.url, payload)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise BackendError(
                f"{self.url} answered without a 'results' list; is it a Cohere/Jina rerank endpoint?"
            )
        rows = ordered_by_index(results, len(chunk), what="rerank result")
        tokens = _usage_tokens(body, len(chunk))
        return [(relevance(row), n) for row, n in zip(rows, tokens, strict=True)]


def _usage_tokens(body: dict[str, Any], count: int) -> list[int]:
    """Per-document tokens when the server reports a total (Jina/vLLM ``usage``), shared out evenly."""
    usage = body.get("usage")
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    if not isinstance(total, int) or total <= 0:
        return [0] * count
    share = [total // count] * count
    share[0] += total - sum(share)
    return share


def create(settings: RerankSettings, hub: HubSettings) -> RemoteReranker:
    """Registry factory: ``settings.url`` is the server, ``settings.model`` the name it serves."""
    return RemoteReranker(settings)
