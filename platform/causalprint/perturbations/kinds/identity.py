"""No change: the clean member of an augmentation mix."""

from __future__ import annotations

import numpy as np

from causalprint.perturbations.base import Perturbation


class Identity(Perturbation):
    name = "none"

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return image
