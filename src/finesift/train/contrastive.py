"""The gradient of one global batch's InfoNCE: this rank's slice embedded, all ranks gathered, GradCache.

Plain: this rank embeds its slice (queries, positives, hard negatives) with gradients; the slices of
all ranks are gathered (:func:`finesift.train.distributed.gather`) and the loss of the whole global
batch, masks included, is back-propagated.

Cached (``mini_batch_size``, GradCache of Gao et al. 2021): the slice is embedded ``mini_batch_size``
texts at a time *without* gradients, the loss and its gradient with respect to those embeddings are
computed on the whole gathered batch, then each mini-batch is embedded again with gradients, the
random-number state of its first pass restored (dropout draws the same masks), and the cached
embedding gradient is back-propagated through it. Memory is that of one mini-batch's activations;
the gradient equals the plain one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from finesift.train.config import EmbeddingTrainConfig
from finesift.train.data import TrainData
from finesift.train.distributed import World, gather
from finesift.train.encoder import TrainableEncoder
from finesift.train.loss import info_nce, same_text_masks

_PAD = "\x00pad"


@dataclass
class _Replay:
    """The mini-batches of a cached pass: (role, start, texts, RNG state) each, replayed with gradients."""

    chunks: list[tuple[int, int, list[str], Any]] = field(default_factory=list)


class BatchLoss:
    """Adds the gradient of one global batch's loss to this rank's parameters."""

    def __init__(
        self,
        encoder: TrainableEncoder,
        queries: list[str],
        data: TrainData,
        negatives: list[tuple[str, ...]],
        config: EmbeddingTrainConfig,
        world: World,
    ) -> None:
        self.encoder, self.queries, self.data, self.negatives = encoder, queries, data, negatives
        self.config, self.world = config, world

    def backward(self, batch: list[int], scale: float) -> float:
        """Back-propagates ``scale`` × the loss of the global batch ``batch``; returns that value."""
        pairs = [self.data.pairs[i] for i in batch]
        negs = [self.negatives[i] for i in batch]
        k = max((len(row) for row in negs), default=0)
        sizes = self.world.sizes(len(batch))
        start, end = self.world.span(len(batch))
        local = batch[start:end]
        roles = [
            [self.queries[i] for i in local],
            [self.data.pairs[i].positive for i in local],
            [text for i in local for text in self.negatives[i]],
        ]
        fallback = self.queries[batch[0]]
        if self.config.mini_batch_size:
            (q, p, flat), replay = self._embed_cached(roles, fallback, self.config.mini_batch_size)
        else:
            (q, p, flat), replay = [self._embed(texts, fallback) for texts in roles], None
        n, valid = self._negatives(flat, negs, k, (start, end))
        same, neg_same = same_text_masks([pair.positive for pair in pairs], _padded(negs, k))
        loss = scale * info_nce(
            gather(self.world, q, sizes),
            gather(self.world, p, sizes),
            n,
            temperature=self.config.temperature,
            same_positive=same,
            negative_is_positive=neg_same,
            negative_valid=valid,
            dims=self.config.dims,
        )
        loss.backward()
        if replay is not None:
            self._replay(replay, [q, p, flat])
        return float(loss.detach())

    def _embed(self, texts: list[str], fallback: str) -> Any:
        """(len(texts), D) with gradients; an empty slice still reaches the weights (zero gradient)."""
        return self.encoder.forward(texts or [fallback])[: len(texts)]

    def _embed_cached(self, roles: list[list[str]], fallback: str, size: int) -> tuple[list[Any], _Replay]:
        import torch

        replay = _Replay()
        leaves = []
        with torch.no_grad():
            for role, texts in enumerate(roles):
                parts = []
                for start in range(0, len(texts), size):
                    chunk = texts[start : start + size]
                    replay.chunks.append((role, start, chunk, _rng_state(self.encoder.device)))
                    parts.append(self.encoder.forward(chunk))
                vectors = torch.cat(parts) if parts else self.encoder.forward([fallback])[:0]
                leaves.append(vectors.detach().requires_grad_())
        return leaves, replay

    def _replay(self, replay: _Replay, leaves: list[Any]) -> None:
        """Each mini-batch embedded again with gradients, its cached embedding gradient pushed through."""
        for role, start, chunk, state in replay.chunks:
            grad = leaves[role].grad
            if grad is None:
                continue
            _set_rng_state(self.encoder.device, state)
            self.encoder.forward(chunk).backward(grad[start : start + len(chunk)])

    def _negatives(
        self, flat: Any, negs: Sequence[tuple[str, ...]], k: int, span: tuple[int, int]
    ) -> tuple[Any | None, Any | None]:
        """Gathered (B, K, D) negative embeddings (zeros in empty slots) and the (B, K) validity mask.

        ``flat`` holds this rank's negatives (rows ``span`` of ``negs``) one after another.
        """
        import torch

        if k == 0:
            return None, None
        local = negs[span[0] : span[1]]
        n = flat.new_zeros((len(local), k, flat.shape[-1]))
        at = 0
        for i, row in enumerate(local):
            n[i, : len(row)] = flat[at : at + len(row)]
            at += len(row)
        valid = torch.zeros(len(negs), k, dtype=torch.bool)
        for i, row in enumerate(negs):
            valid[i, : len(row)] = True
        return gather(self.world, n, self.world.sizes(len(negs))), valid


def _padded(negs: list[tuple[str, ...]], k: int) -> list[list[str]] | None:
    if k == 0:
        return None
    return [list(row) + [_PAD] * (k - len(row)) for row in negs]


def _rng_state(device: str) -> tuple[Any, Any]:
    import torch

    cuda = torch.cuda.get_rng_state(device) if device.startswith("cuda") else None
    return torch.get_rng_state(), cuda


def _set_rng_state(device: str, state: tuple[Any, Any]) -> None:
    import torch

    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)
