"""Forward passes that return only what the engines pool: each row's last hidden state.

Three shapes of the same computation, equal up to floating-point reordering:
left-padded batches (SDPA), padding-free packed sequences (flash-attention 2 on GPU), and
right-padded tails that attend to a shared prefix whose key/value cache was computed once.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from finesift.runtime.batching import left_pad, pack, right_pad


def last_hidden_padded(model: Any, rows: Sequence[Sequence[int]], *, pad_id: int, device: str) -> Any:
    """(n, hidden) last-token states of left-padded ``rows`` (the last column is every row's end)."""
    import torch

    ids, mask = left_pad(rows, pad_id)
    with torch.inference_mode():
        out = model(
            input_ids=torch.tensor(ids, device=device),
            attention_mask=torch.tensor(mask, device=device),
            use_cache=False,
        )
        return out.last_hidden_state[:, -1]


def last_hidden_packed(model: Any, rows: Sequence[Sequence[int]], *, device: str) -> Any:
    """(n, hidden) last-token states with every row packed into one sequence (no padding).

    Needs an attention kernel that reads sequence boundaries from restarting position ids
    (flash-attention 2 in transformers).
    """
    import torch

    ids, positions, last = pack(rows)
    with torch.inference_mode():
        out = model(
            input_ids=torch.tensor([ids], device=device),
            position_ids=torch.tensor([positions], device=device),
            use_cache=False,
        )
        return out.last_hidden_state[0, torch.tensor(last, device=device)]


class SharedPrefix:
    """The key/value cache of one token prefix, computed once and read by many batches.

    It is never written to: each batch's keys/values are concatenated after the prefix per layer
    and dropped with the layer's activations, so memory stays that of one padded batch.
    """

    def __init__(self, model: Any, prefix: Sequence[int], *, device: str) -> None:
        import torch

        self.length = len(prefix)
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([list(prefix)], device=device), use_cache=True)
        cache = out["cache"] if "cache" in out else out["past_key_values"]
        self.layers = [(layer.keys, layer.values) for layer in cache.layers]

    def cache(self) -> Any:
        """A transformers ``Cache`` that returns prefix + new states without storing them."""
        from transformers.cache_utils import Cache

        return Cache(layers=[_frozen_layer(k, v) for k, v in self.layers])


def cache_argument(model: Any) -> str:
    """The name under which ``model.forward`` takes a KV cache: ``cache`` from transformers 5.24 on
    (``past_key_values`` is deprecated there and removed in 5.40), ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@lru_cache(maxsize=1)
def _frozen_layer_class() -> Any:
    from transformers.cache_utils import DynamicLayer

    class FrozenPrefixLayer(DynamicLayer):
        """A cache layer that reads its prefix and stores nothing."""

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            import torch

            n = key_states.shape[0]
            keys: Any = self.keys
            values: Any = self.values
            k = torch.cat([keys.expand(n, -1, -1, -1), key_states], dim=-2)
            v = torch.cat([values.expand(n, -1, -1, -1), value_states], dim=-2)
            return k, v

    return FrozenPrefixLayer


def _frozen_layer(keys: Any, values: Any) -> Any:
    layer = _frozen_layer_class()()
    layer.dtype, layer.device = keys.dtype, keys.device
    layer.keys, layer.values = keys, values
    layer.is_initialized = True  # read from transformers 5 on; 4.x looks at the keys themselves
    return layer


def last_hidden_after_prefix(
    model: Any, prefix: SharedPrefix, tails: Sequence[Sequence[int]], *, pad_id: int, device: str
) -> Any:
    """(n, hidden) last-token states of ``prefix + tail`` for each tail.

    Tails are right-padded: under causal attention a real token never sees the pads after it, so
    the prefix stays contiguous with every tail and positions continue from the prefix length.
    """
    import torch

    ids, mask = right_pad(tails, pad_id)
    full_mask = [[1] * prefix.length + m for m in mask]
    last = torch.tensor([len(t) - 1 for t in tails], device=device)
    with torch.inference_mode():
        out = model(
            input_ids=torch.tensor(ids, device=device),
            attention_mask=torch.tensor(full_mask, device=device),
            use_cache=True,
            **{cache_argument(model): prefix.cache()},
        )
        hidden = out.last_hidden_state
        return hidden[torch.arange(len(tails), device=device), last]
