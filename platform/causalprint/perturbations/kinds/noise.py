"""Additive Gaussian noise, sigma on the 0-255 scale, rounded and clipped back to uint8."""

from __future__ import annotations

from typing import Any

import numpy as np

from causalprint.perturbations.base import Perturbation


class GaussianNoise(Perturbation):
    name = "noise"

    def __init__(self, sigma: float = 2.0, **options: Any) -> None:
        super().__init__(**options)
        if float(sigma) <= 0:
            raise ValueError(f"noise sigma must be positive (0-255 scale), got {sigma}")
        self.sigma = float(sigma)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = image.astype(np.float32) + rng.normal(0.0, self.sigma, image.shape).astype(np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
