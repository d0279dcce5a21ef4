"""Deterministic multi-scale random crops: thousands of distinct real images from a few photographs."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydantic import Field, model_validator

from causalprint.config import StrictModel
from causalprint.imaging.intake import canonicalize


class CropConfig(StrictModel):
    """Crop sides are drawn log-uniformly between the two fractions of a photo's shorter side."""

    min_side_frac: float = Field(default=0.08, gt=0, le=1)
    max_side_frac: float = Field(default=0.5, gt=0, le=1)
    flip: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> CropConfig:
        if self.min_side_frac > self.max_side_frac:
            raise ValueError("crops.min_side_frac must not exceed crops.max_side_frac")
        return self


def random_crops(photos: list[np.ndarray], n: int, size: int, seed: int, config: CropConfig) -> np.ndarray:
    """``n`` square crops, each resized to ``size`` by the intake policy, as ``[n, size, size, 3]`` uint8.

    The same (photos, n, size, seed, config) always gives the same crops.
    """
    if not photos:
        raise ValueError("random_crops needs at least one photo")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    log_lo, log_hi = np.log(config.min_side_frac), np.log(config.max_side_frac)
    for i in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        side = max(size, int(round(min(h, w) * float(np.exp(rng.uniform(log_lo, log_hi))))))
        side = min(side, h, w)
        top = int(rng.integers(0, h - side + 1))
        left = int(rng.integers(0, w - side + 1))
        crop = photo[top : top + side, left : left + side]
        if config.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = canonicalize(Image.fromarray(np.ascontiguousarray(crop)), size)
    return out
