"""Down-scale by a factor and back to the original size (bicubic both ways, antialiased on the way down)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from causalprint.perturbations.base import Perturbation
from causalprint.perturbations.kinds._pil import to_array, to_pil


class ResizeRoundTrip(Perturbation):
    name = "resize"

    def __init__(self, scale: float = 0.5, **options: Any) -> None:
        super().__init__(**options)
        if not 0 < float(scale) < 1:
            raise ValueError(f"resize scale must be in (0, 1), got {scale}")
        self.scale = float(scale)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        small = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        bicubic = Image.Resampling.BICUBIC
        return to_array(to_pil(image).resize(small, bicubic, reducing_gap=None).resize((w, h), bicubic))
