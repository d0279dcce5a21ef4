"""RGB space: the residual itself, flattened (optionally average-pooled first)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from causalprint.features.spaces._common import check_residuals, reject_unknown
from causalprint.features.spaces.base import FeatureSpace


class RGBSpace(FeatureSpace):
    """``[N, 3, S, S]`` -> ``[N, 3 * (S / pool)^2]``. ``pool`` > 1 averages ``pool x pool`` blocks, which keeps the
    low-frequency part of the residual and shortens the vector (the traces above ``S / pool`` are lost)."""

    name = "rgb"

    def __init__(self, image_size: int, device: str | torch.device = "cpu", **options: Any) -> None:
        super().__init__(image_size, device)
        self.pool = int(options.pop("pool", 1))
        reject_unknown(self.name, options)
        if self.pool < 1 or image_size % self.pool:
            raise ValueError(f"pool must divide image_size; got pool={self.pool}, image_size={image_size}")

    @property
    def dim(self) -> int:
        return 3 * (self.image_size // self.pool) ** 2

    def embed(self, residuals: torch.Tensor) -> torch.Tensor:
        x = check_residuals(residuals, self.image_size).to(self.device, torch.float32)
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)
        return x.flatten(1)

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "pool": str(self.pool)}
