"""The interface every perturbation implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Perturbation(ABC):
    """Maps one canonical uint8 ``[H, W, 3]`` image to a uint8 image of the same shape.

    Randomness (only noise uses it) comes from the ``rng`` the caller derives from the image, so a perturbed
    collection is reproducible whatever the batch or worker.
    """

    name: str = ""

    def __init__(self, **options: Any) -> None:
        if options:
            raise ValueError(f"perturbation {self.name!r} got unknown options {sorted(options)}")

    @abstractmethod
    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...
