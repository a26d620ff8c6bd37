"""Length-sorted, token-budget batching.

Padding costs as much compute as real tokens, so inputs are sorted by length and cut into
batches whose padded size (rows x longest row) stays under a token budget. Callers scatter
results back with the returned indices, so output order always equals input order.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_CPU_TOKEN_BUDGET = 8192
DEFAULT_GPU_TOKEN_BUDGET = 65536
DEFAULT_MAX_BATCH = 256


def default_token_budget(device: str) -> int:
    """A sensible padded-token budget per forward pass for a device."""
    return DEFAULT_GPU_TOKEN_BUDGET if device.startswith("cuda") else DEFAULT_CPU_TOKEN_BUDGET


def plan_batches(
    lengths: Sequence[int], *, token_budget: int, max_batch: int = DEFAULT_MAX_BATCH
) -> list[list[int]]:
    """Group input indices into batches, longest first.

    Each batch satisfies ``len(batch) * max(lengths[i] for i in batch) <= token_budget`` unless a
    single input is longer than the budget, in which case it forms a batch alone.
    """
    if token_budget < 1 or max_batch < 1:
        raise ValueError("token_budget and max_batch must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    widest = 0
    for i in order:
        width = max(widest, lengths[i], 1)
        if current and (width * (len(current) + 1) > token_budget or len(current) >= max_batch):
            batches.append(current)
            current, width = [], max(lengths[i], 1)
        current.append(i)
        widest = width
    if current:
        batches.append(current)
    return batches
