"""The improved InfoNCE of the Qwen3 Embedding report, with the false-negative mask and Matryoshka.

For a batch of N instances (query q_i, positive d_i+, K hard negatives d_ik-), cosine s, temperature τ::

    L = -(1/N) Σ_i log( exp(s(q_i, d_i+)/τ) / Z_i )
    Z_i = exp(s(q_i, d_i+)/τ)
        + Σ_k  m_ik exp(s(q_i, d_ik-)/τ)     hard negatives
        + Σ_j≠i m_ij exp(s(q_i, q_j)/τ)      other in-batch queries
        + Σ_j≠i m_ij exp(s(d_i+, d_j)/τ)     other in-batch documents vs the positive
        + Σ_j≠i m_ij exp(s(q_i, d_j)/τ)      other in-batch documents vs the query

m = 0 when the term's similarity exceeds s(q_i, d_i+) + 0.1, or when its document is the same text as
d_i+ (for the query-query term: when q_j's positive d_j+ is that text); else 1. The mask is a constant
(no gradient flows through the decision). Matryoshka: the loss is summed over prefixes of the vectors,
each prefix re-normalised.

torch is imported by the functions, never at module import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MARGIN = 0.1


def same_text_masks(
    positives: Sequence[str], negatives: Sequence[Sequence[str]] | None = None
) -> tuple[Any, Any | None]:
    """(N, N) "d_j+ is the same text as d_i+" and (N, K) "d_ik- is the same text as d_i+" as bool tensors."""
    import torch

    n = len(positives)
    same = torch.tensor(
        [[positives[i] == positives[j] for j in range(n)] for i in range(n)], dtype=torch.bool
    )
    if negatives is None:
        return same, None
    neg = torch.tensor([[text == positives[i] for text in row] for i, row in enumerate(negatives)])
    return same, neg.reshape(n, -1).bool()


def info_nce(  # noqa: PLR0913 - the formula's inputs, all keyword after the embeddings
    queries: Any,
    positives: Any,
    negatives: Any | None = None,
    *,
    temperature: float = 0.05,
    same_positive: Any | None = None,
    negative_is_positive: Any | None = None,
    negative_valid: Any | None = None,
    dims: Sequence[int] | None = None,
) -> Any:
    """The loss for (N, D) query and positive embeddings and optional (N, K, D) hard negatives.

    ``same_positive`` (N, N) and ``negative_is_positive`` (N, K) carry the text-equality part of the mask
    (see :func:`same_text_masks`); ``negative_valid`` (N, K) marks padding slots to ignore. ``dims``
    lists Matryoshka prefixes (the full dimension is always included); the losses are summed.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, not {temperature}")
    full = int(queries.shape[-1])
    sizes = sorted({*(int(d) for d in dims or ()), full})
    if sizes[0] < 1 or sizes[-1] > full:
        raise ValueError(f"Matryoshka dims must lie in 1..{full}, not {list(dims or ())}")
    total = None
    for size in sizes:
        part = _info_nce_at(
            queries[..., :size],
            positives[..., :size],
            None if negatives is None else negatives[..., :size],
            temperature,
            same_positive,
            _negative_keep(negative_is_positive, negative_valid),
        )
        total = part if total is None else total + part
    return total


def _negative_keep(is_positive: Any | None, valid: Any | None) -> Any | None:
    if is_positive is None:
        return valid
    keep = ~is_positive
    return keep if valid is None else keep & valid


def _info_nce_at(
    q: Any, p: Any, n: Any | None, tau: float, same_positive: Any | None, neg_keep: Any | None
) -> Any:
    import torch
    import torch.nn.functional as F

    q, p = F.normalize(q.float(), dim=-1), F.normalize(p.float(), dim=-1)
    size = q.shape[0]
    pos = (q * p).sum(-1)  # (N,)
    limit = (pos.detach() + MARGIN).unsqueeze(1)
    eye = torch.eye(size, dtype=torch.bool, device=q.device)
    same = eye if same_positive is None else same_positive.to(q.device) | eye
    blocks = [pos.unsqueeze(1)]
    for scores, text_mask in ((q @ q.T, same), (p @ p.T, same), (q @ p.T, same)):
        blocks.append(_masked(scores, text_mask, limit))
    if n is not None and n.shape[1] > 0:
        n = F.normalize(n.float(), dim=-1)
        hard = torch.einsum("nd,nkd->nk", q, n)
        drop = torch.zeros_like(hard, dtype=torch.bool) if neg_keep is None else ~neg_keep.to(q.device)
        blocks.append(_masked(hard, drop, limit))
    logits = torch.cat(blocks, dim=1) / tau
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def _masked(scores: Any, text_mask: Any, limit: Any) -> Any:
    """Scores with masked entries at -inf: text-equal (or the diagonal), or above s(q_i, d_i+) + 0.1."""
    drop = text_mask | (scores.detach() > limit)
    return scores.masked_fill(drop, float("-inf"))
