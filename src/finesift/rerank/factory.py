"""Settings to a ready :class:`Reranker`: the one place the reranker section becomes an object.

It lives here, below the composition root, so that the knowledge base, eval and doctor build models
the same way as :mod:`finesift.services` without importing it.
"""

from __future__ import annotations

from finesift.rerank.base import Reranker
from finesift.rerank.registry import create_backend
from finesift.settings import HubSettings, RerankSettings


def build_reranker(settings: RerankSettings, hub: HubSettings | None = None) -> Reranker:
    """A :class:`Reranker` over the backend that ``settings`` name."""
    return Reranker(create_backend(settings, hub), instruction=settings.instruction)
