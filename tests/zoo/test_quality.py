"""KID against a direct implementation of the unbiased estimator, and its basic behaviour."""

from __future__ import annotations

import numpy as np

from causalprint.zoo.quality import _poly_mmd2_unbiased, kernel_inception_distance


def _reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_matches_direct_estimator() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 5)), rng.normal(0.5, 1.0, size=(7, 5))
    assert np.isclose(_poly_mmd2_unbiased(x, y), _reference_mmd2(x, y))


def test_same_distribution_near_zero_and_shift_is_larger() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    shifted = rng.normal(0.7, 1.0, size=(400, 16))
    same, _ = kernel_inception_distance(a, b, subsets=10, subset_size=100)
    far, _ = kernel_inception_distance(a, shifted, subsets=10, subset_size=100)
    assert abs(same) < 0.05 < far
