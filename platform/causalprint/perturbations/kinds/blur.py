"""Gaussian blur with a standard deviation in pixels (Pillow's ``GaussianBlur`` radius is the sigma)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import ImageFilter

from causalprint.perturbations.base import Perturbation
from causalprint.perturbations.kinds._pil import to_array, to_pil


class GaussianBlur(Perturbation):
    name = "blur"

    def __init__(self, sigma: float = 1.0, **options: Any) -> None:
        super().__init__(**options)
        if float(sigma) <= 0:
            raise ValueError(f"blur sigma must be positive, got {sigma}")
        self.sigma = float(sigma)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return to_array(to_pil(image).filter(ImageFilter.GaussianBlur(radius=self.sigma)))
