"""The control: no reconstruction at all, so the "residual" is the image itself (x_hat = 0)."""

from __future__ import annotations

import torch

from causalprint.residual.modes.base import ResidualMode


class ImageMode(ResidualMode):
    name = "image"
    differentiable = True

    @property
    def denoiser_passes(self) -> int:
        return 0

    def reconstruct(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(images)
