"""JPEG re-encoding at a quality (libjpeg through Pillow, 4:2:0 chroma subsampling as most web pipelines do)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from causalprint.perturbations.base import Perturbation
from causalprint.perturbations.kinds._pil import to_array, to_pil


class Jpeg(Perturbation):
    name = "jpeg"

    def __init__(self, quality: int = 75, **options: Any) -> None:
        super().__init__(**options)
        if not 1 <= int(quality) <= 100:
            raise ValueError(f"jpeg quality must be in 1..100, got {quality}")
        self.quality = int(quality)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        buffer = io.BytesIO()
        to_pil(image).save(buffer, format="JPEG", quality=self.quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return to_array(decoded)
