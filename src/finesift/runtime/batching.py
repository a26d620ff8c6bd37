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
    lengths: Sequence[int], *, token_budget: int, max_batch: int = DEFAULT_MAX_BATCH, packed: bool = False
) -> list[list[int]]:
    """Group input indices into batches, longest first.

    Each batch satisfies ``len(batch) * max(lengths[i] for i in batch) <= token_budget`` (padded
    batches) or ``sum(lengths[i] for i in batch) <= token_budget`` (``packed``, no padding) unless
    a single input is longer than the budget, in which case it forms a batch alone.
    """
    if token_budget < 1 or max_batch < 1:
        raise ValueError("token_budget and max_batch must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    widest = total = 0
    for i in order:
        size = max(lengths[i], 1)
        width = max(widest, size)
        cost = total + size if packed else width * (len(current) + 1)
        if current and (cost > token_budget or len(current) >= max_batch):
            batches.append(current)
            current, width, total = [], size, 0
        current.append(i)
        widest, total = width, total + size
    if current:
        batches.append(current)
    return batches


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    """Rows padded on the left to the longest, and their attention masks (1 = real token)."""
    width = max(len(r) for r in rows)
    ids = [[pad_id] * (width - len(r)) + list(r) for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    return ids, mask


def right_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    """Rows padded on the right to the longest, and their attention masks (1 = real token)."""
    width = max(len(r) for r in rows)
    ids = [list(r) + [pad_id] * (width - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
    return ids, mask


def pack(rows: Sequence[Sequence[int]]) -> tuple[list[int], list[int], list[int]]:
    """Padding-free packing: all rows in one sequence, positions restarting at 0 per row.

    Returns (token ids, position ids, index of each row's last token).
    """
    ids: list[int] = []
    positions: list[int] = []
    last: list[int] = []
    for row in rows:
        ids.extend(row)
        positions.extend(range(len(row)))
        last.append(len(ids) - 1)
    return ids, positions, last


def split_on_prefix(rows: Sequence[Sequence[int]], prefix: Sequence[int]) -> tuple[list[int], list[int]]:
    """Indices of rows that start with ``prefix`` and extend past it, and of all other rows."""
    n = len(prefix)
    head = list(prefix)
    shared: list[int] = []
    other: list[int] = []
    for i, row in enumerate(rows):
        (shared if len(row) > n and list(row[:n]) == head else other).append(i)
    return shared, other
