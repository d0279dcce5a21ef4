"""uint8 arrays to and from PIL, shared by the perturbations that resample or encode."""

from __future__ import annotations

import numpy as np
from PIL import Image


def to_pil(image: np.ndarray) -> Image.Image:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    return Image.fromarray(image, "RGB")


def to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
