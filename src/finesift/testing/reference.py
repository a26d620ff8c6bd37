"""The model-card reference code, for the tests and benchmarks.

It lives in :mod:`finesift.runtime.model_card`, where ``finesift doctor`` reaches it too.
"""

from finesift.runtime.model_card import (
    DEFAULT_TASK,
    PREFIX,
    SUFFIX,
    ReferenceEmbedder,
    ReferenceReranker,
    get_detailed_instruct,
    last_token_pool,
)

__all__ = [
    "DEFAULT_TASK",
    "PREFIX",
    "SUFFIX",
    "ReferenceEmbedder",
    "ReferenceReranker",
    "get_detailed_instruct",
    "last_token_pool",
]
