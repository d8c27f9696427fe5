"""Tolerances derived from floating-point types, not picked by hand.

A float32 value carries a relative rounding error of up to ``eps / 2`` (``eps = 2**-23``); a sum of
``n`` float32 terms, each itself rounded (a softmax, a normalised row), is off by at most
``n * eps`` relative to the sum of the magnitudes (one rounding per term and per addition). A test
comparing float32 results with a float64 reference uses these bounds, which hold on every machine
and summation order, instead of a fixed ``1e-6`` that one machine happened to meet.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def sum_rtol(n_terms: int, dtype=np.float32) -> float:  # noqa: ANN001 - any numpy dtype
    """Worst-case relative error of a sum of ``n_terms`` rounded values of ``dtype``."""
    return max(int(n_terms), 1) * float(np.finfo(dtype).eps)
