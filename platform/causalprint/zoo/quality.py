"""Sample quality as a Kernel Inception Distance (Binkowski et al. 2018) in EfficientNet-Lite0 feature space.

KID is the unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
subsets. Unlike FID it is unbiased for small sample counts, which suits a CPU-sized zoo. Real-vs-real (two
disjoint sets of real crops) is the floor any generator is compared against.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from causalprint.config import StrictModel


class QualityConfig(StrictModel):
    images: int = Field(default=500, ge=8, description="images per source used for the distance")
    feature_size: int = Field(default=128, ge=32, description="side the images are resized to for the network")
    subsets: int = Field(default=20, ge=1)
    subset_size: int = Field(default=200, ge=4)


def _poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    sum_xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    sum_yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sum_xx + sum_yy - 2 * kxy.mean())


def kernel_inception_distance(
    features_a: np.ndarray, features_b: np.ndarray, subsets: int = 20, subset_size: int = 200, seed: int = 0
) -> tuple[float, float]:
    """Mean and standard deviation of KID over random subsets of two feature sets ``[N, D]``."""
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = [
        _poly_mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
