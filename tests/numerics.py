"""Float32 tolerances derived from the arithmetic, so that comparisons hold on every CPU and BLAS.

Two computations of the same float32 dot product or norm may add their terms in different orders
(blocked GEMMs, SIMD widths, thread splits). For an ``n``-term sum whose terms' magnitudes add up to
``scale``, any order stays within ``(n - 1) * u * scale`` of the exact value (Higham, gamma_{n-1}), with
``u = eps / 2`` the unit roundoff; ``n * eps * scale`` bounds the difference between two such orders.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def sum_tolerance(n: int, scale: float = 1.0) -> float:
    """Largest difference two float32 evaluations of an ``n``-term sum may show (a few ulps added)."""
    return (n + 4) * EPS32 * scale
