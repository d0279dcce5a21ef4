"""The contract of a feature space: residual maps in, one vector per image out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch


class FeatureSpace(ABC):
    """Maps residuals ``[N, 3, S, S]`` (float, roughly in [-2, 2]) to embeddings ``[N, dim]`` (float32).

    Spaces are pure functions of their weights: the same input gives the same output, batch by batch, so that a
    Ray actor and a plain loop agree. ``options`` come from the extraction config (e.g. a checkpoint path).
    """

    name: ClassVar[str]

    def __init__(self, image_size: int, device: str | torch.device = "cpu", **options: Any) -> None:
        self.image_size = image_size
        self.device = torch.device(device)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of one embedding."""

    @abstractmethod
    def embed(self, residuals: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` -> ``[N, dim]``; differentiable where the space allows it."""

    def identity(self) -> dict[str, str]:
        """What a stored vector must be matched against (name, plus weights hash for learned spaces)."""
        return {"name": self.name}
