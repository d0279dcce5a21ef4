"""Keep the central fraction of each side and scale it back to the original size (bicubic)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from causalprint.perturbations.base import Perturbation
from causalprint.perturbations.kinds._pil import to_array, to_pil


class CenterCrop(Perturbation):
    name = "center_crop"

    def __init__(self, fraction: float = 0.9, **options: Any) -> None:
        super().__init__(**options)
        if not 0 < float(fraction) <= 1:
            raise ValueError(f"crop fraction must be in (0, 1], got {fraction}")
        self.fraction = float(fraction)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        ch, cw = max(1, round(h * self.fraction)), max(1, round(w * self.fraction))
        top, left = (h - ch) // 2, (w - cw) // 2
        crop = to_pil(np.ascontiguousarray(image[top : top + ch, left : left + cw]))
        return to_array(crop.resize((w, h), Image.Resampling.BICUBIC))
