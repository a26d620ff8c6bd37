"""The improved InfoNCE against a plain, loop-by-loop reading of the formula in TRAINING.md."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from finesift.train.loss import info_nce, same_text_masks  # noqa: E402


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _reference(q, p, n, pos_text, neg_text, tau):
    """L = -(1/N) Σ_i log(exp(s(q_i,d_i+)/τ) / Z_i), masks by the 0.1 margin and by equal texts."""
    size, total = len(q), 0.0
    for i in range(size):
        s_pos = _cos(q[i], p[i])

        def term(s: float, same_text: bool, s_pos: float = s_pos) -> float:
            return 0.0 if (s > s_pos + 0.1 or same_text) else math.exp(s / tau)

        z = math.exp(s_pos / tau)
        for k in range(len(n[i])):
            z += term(_cos(q[i], n[i][k]), neg_text[i][k] == pos_text[i])
        for j in range(size):
            if j == i:
                continue
            same = pos_text[j] == pos_text[i]
            z += term(_cos(q[i], q[j]), same)
            z += term(_cos(p[i], p[j]), same)
            z += term(_cos(q[i], p[j]), same)
        total += -math.log(math.exp(s_pos / tau) / z)
    return total / size


def _batch(seed: int, size: int = 5, k: int = 3, dim: int = 8):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(size, dim, generator=gen)
    p = q + 0.8 * torch.randn(size, dim, generator=gen)  # positives near their queries
    n = torch.randn(size, k, dim, generator=gen)
    n[0, 0] = q[0] * 3  # a false negative: far above s(q_0, d_0+) + 0.1
    n[1, 1] = p[1]  # the positive's own text offered as a negative
    p[3] = p[2]  # two queries share one positive text
    pos_text = ["a", "b", "c", "c", "e"]
    neg_text = [[f"n{i}{j}" for j in range(k)] for i in range(size)]
    neg_text[1][1] = "b"
    return q, p, n, pos_text, neg_text


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_matches_the_formula_mask_included(tau: float) -> None:
    q, p, n, pos_text, neg_text = _batch(0)
    same, neg_same = same_text_masks(pos_text, neg_text)
    got = info_nce(q, p, n, temperature=tau, same_positive=same, negative_is_positive=neg_same)
    want = _reference(q.tolist(), p.tolist(), n.tolist(), pos_text, neg_text, tau)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_the_mask_matters() -> None:
    """Without the text masks the loss differs: the duplicate positive and the copied negative count."""
    q, p, n, pos_text, neg_text = _batch(1)
    same, neg_same = same_text_masks(pos_text, neg_text)
    masked = info_nce(q, p, n, temperature=0.1, same_positive=same, negative_is_positive=neg_same)
    unmasked = info_nce(q, p, n, temperature=0.1)
    assert unmasked.item() > masked.item()
    distinct = [f"t{i}" for i in range(len(pos_text))]
    other_negs = [[f"x{i}{j}" for j in range(3)] for i in range(len(pos_text))]
    want = _reference(q.tolist(), p.tolist(), n.tolist(), distinct, other_negs, 0.1)
    assert unmasked.item() == pytest.approx(want, rel=1e-5)


def test_without_hard_negatives_and_with_padding_slots() -> None:
    q, p, n, pos_text, _neg_text = _batch(2)
    same, _ = same_text_masks(pos_text)
    got = info_nce(q, p, temperature=0.05, same_positive=same)
    want = _reference(q.tolist(), p.tolist(), [[] for _ in pos_text], pos_text, [[] for _ in pos_text], 0.05)
    assert got.item() == pytest.approx(want, rel=1e-5)
    valid = torch.zeros(n.shape[:2], dtype=torch.bool)
    padded = info_nce(q, p, n, temperature=0.05, same_positive=same, negative_valid=valid)
    assert padded.item() == pytest.approx(want, rel=1e-5)


def test_matryoshka_sums_renormalised_prefixes() -> None:
    q, p, n, pos_text, neg_text = _batch(3)
    same, neg_same = same_text_masks(pos_text, neg_text)
    kw = {"temperature": 0.05, "same_positive": same, "negative_is_positive": neg_same}
    got = info_nce(q, p, n, dims=[4], **kw)
    want = sum(
        _reference(q[:, :d].tolist(), p[:, :d].tolist(), n[..., :d].tolist(), pos_text, neg_text, 0.05)
        for d in (4, 8)
    )
    assert got.item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="Matryoshka dims"):
        info_nce(q, p, dims=[16], temperature=0.05)


def test_gradients_flow_and_scale_does_not_matter() -> None:
    q, p, n, _pos_text, _neg_text = _batch(4)
    q.requires_grad_(True)
    loss = info_nce(q, p, n, temperature=0.05)
    loss.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    assert info_nce(q * 7, p, n, temperature=0.05).item() == pytest.approx(loss.item(), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(q, p, temperature=0.0)
