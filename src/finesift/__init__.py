"""finesift: faithful, fast two-stage retrieval with Qwen3-Embedding and Qwen3-Reranker.

Importing the package is cheap: torch, transformers and every other heavy dependency load only
when a model is built.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from finesift.errors import (
    BackendError,
    Conflict,
    FinesiftError,
    InvalidRequest,
    MissingDependency,
    NotFound,
    Overloaded,
    StoreError,
)

__version__ = "0.1.0"

_LAZY = {
    "load_embedder": "finesift.services",
    "load_reranker": "finesift.services",
    "build_services": "finesift.services",
    "Embedder": "finesift.embedding.embedder",
    "Reranker": "finesift.rerank.base",
    "Settings": "finesift.settings",
    "INSTRUCTIONS": "finesift.embedding.instructions",
}

if TYPE_CHECKING:
    from finesift.embedding.embedder import Embedder
    from finesift.embedding.instructions import INSTRUCTIONS
    from finesift.rerank.base import Reranker
    from finesift.services import build_services, load_embedder, load_reranker
    from finesift.settings import Settings

__all__ = [
    "INSTRUCTIONS",
    "BackendError",
    "Conflict",
    "Embedder",
    "FinesiftError",
    "InvalidRequest",
    "MissingDependency",
    "NotFound",
    "Overloaded",
    "Reranker",
    "Settings",
    "StoreError",
    "__version__",
    "build_services",
    "load_embedder",
    "load_reranker",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'finesift' has no attribute {name!r}")
    return getattr(import_module(module), name)
