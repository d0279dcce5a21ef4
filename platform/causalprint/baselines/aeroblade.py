"""Ricker et al., "AEROBLADE: Training-Free Detection of Latent Diffusion Images Using Autoencoder
Reconstruction Error", CVPR 2024.

AEROBLADE needs no training: an image made by a latent diffusion model is reconstructed more faithfully by that
model's autoencoder, so the reconstruction distance (LPIPS, from one layer of VGG) tells generated from real,
and the autoencoder with the smallest distance names the model. Ours reads the one autoencoder residual the
extraction provides (``latent.rgb``, ``r = x - AE(x)``), so a scalar distance cannot name K sources. It
describes the residual by a small vector of distances instead and attributes by the nearest class mean:

1. Descriptor (``6 * len(scales)`` values, 24 by default): for each scale ``s`` in ``scales``, average-pool
   ``r`` by ``s`` (coarser scales keep the low-frequency part of the error, as LPIPS' deeper layers do), then
   per channel the mean absolute value and the RMS, each as ``log(eps + value)`` since distances spread over
   orders of magnitude.
2. Standardise the descriptors with the train rows' mean and std.
3. Class means of the standardised train descriptors; ``d_k`` = Euclidean distance to the mean of class ``k``.
4. Probabilities ``softmax(-d / T)``, with the one temperature ``T`` fitted on the train rows by minimising the
   NLL (temperature scaling, the only fitted scalar). ``known_score = -min_k d_k``.

Classes without train rows get no mean and are never predicted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn

from causalprint.baselines.base import Baseline, BaselineOptions, image_side

__all__ = ["Aeroblade", "AerobladeOptions", "NearestClassMean"]


class AerobladeOptions(BaselineOptions):
    """Descriptor of :class:`Aeroblade` (no training; ``seed`` is unused)."""

    scales: tuple[int, ...] = Field(default=(1, 2, 4, 8), min_length=1, description="average-pooling factors")
    eps: float = Field(default=1e-6, gt=0, description="floor inside the log of each distance")

    @field_validator("scales")
    @classmethod
    def _positive_unique(cls, scales: tuple[int, ...]) -> tuple[int, ...]:
        if any(s < 1 for s in scales) or len(set(scales)) != len(scales):
            raise ValueError(f"scales must be distinct integers >= 1, got {scales}")
        return scales


class NearestClassMean(nn.Module):
    """Rows ``[B, 3*S*S]`` -> descriptors ``[B, 6 * len(scales)]`` -> distances to the class means ``[B, K]``;
    ``forward`` gives the logits ``-d / T``. State (all buffers): the scaler, the class means, which classes
    have a mean, and ``log T``."""

    desc_mean: Tensor
    desc_std: Tensor
    centers: Tensor
    has_center: Tensor
    log_temperature: Tensor

    def __init__(self, image_side: int, scales: tuple[int, ...], eps: float, num_classes: int) -> None:
        super().__init__()
        self.image_side, self.scales, self.eps = image_side, scales, eps
        dim = 6 * len(scales)
        self.register_buffer("desc_mean", torch.zeros(dim))
        self.register_buffer("desc_std", torch.ones(dim))
        self.register_buffer("centers", torch.zeros(num_classes, dim))
        self.register_buffer("has_center", torch.zeros(num_classes))
        self.register_buffer("log_temperature", torch.zeros(()))

    def descriptor(self, x: Tensor) -> Tensor:
        """Step 1: log mean-|r| and log RMS per channel and scale, ``[B, 6 * len(scales)]``."""
        r = x.reshape(x.shape[0], 3, self.image_side, self.image_side).double()
        parts = []
        for s in self.scales:
            pooled = F.avg_pool2d(r, s) if s > 1 else r
            parts.append(pooled.abs().mean(dim=(2, 3)))
            parts.append(pooled.square().mean(dim=(2, 3)).sqrt())
        return torch.log(self.eps + torch.cat(parts, dim=1)).float()

    def standardised(self, x: Tensor) -> Tensor:
        """Step 2."""
        return (self.descriptor(x) - self.desc_mean) / self.desc_std

    def distances(self, x: Tensor) -> Tensor:
        """Step 3: ``[B, K]``, ``inf`` for a class without a mean."""
        d = torch.cdist(self.standardised(x).double(), self.centers.double()).float()
        return d.masked_fill(self.has_center[None, :] < 0.5, float("inf"))

    def forward(self, x: Tensor) -> Tensor:
        """Step 4: logits ``-d / T``."""
        return -self.distances(x) / self.log_temperature.exp()


class Aeroblade(Baseline):
    """Training-free nearest class mean on a multi-scale reconstruction-distance descriptor of ``latent.rgb``."""

    name = "aeroblade"
    paper = (
        "Ricker, Lukovnikov, Fischer. AEROBLADE: Training-Free Detection of Latent Diffusion Images Using "
        "Autoencoder Reconstruction Error. CVPR 2024"
    )
    columns = ("latent.rgb",)
    Options: ClassVar[type[BaselineOptions]] = AerobladeOptions
    options: AerobladeOptions

    def _build(self, width: int, num_classes: int) -> nn.Module:
        side = image_side(width)
        too_big = [s for s in self.options.scales if side is None or s > side]
        if side is None or too_big:
            raise ValueError(f"{self.name}: scales {too_big} exceed the image side {side} of {self.columns[0]!r}")
        return NearestClassMean(side, self.options.scales, self.options.eps, num_classes)

    @torch.no_grad()
    def _train(self, module: nn.Module, x: Tensor, y: Tensor) -> list[dict[str, float]]:
        from causalprint.attribution.openset import TemperatureScaler

        if not isinstance(module, NearestClassMean):
            raise TypeError(f"{self.name} fits a NearestClassMean, got {type(module).__name__}")
        device = module.centers.device
        size = self.inference_batch_size
        desc = torch.cat([module.descriptor(x[i : i + size].to(device)) for i in range(0, x.shape[0], size)]).double()
        # 2. Scaler from the train rows (a floor keeps a constant descriptor entry at 0).
        module.desc_mean.copy_(desc.mean(0).float())
        module.desc_std.copy_(desc.std(0, unbiased=False).clamp_min(1e-6).float())
        z = (desc - module.desc_mean.double()) / module.desc_std.double()
        # 3. Class means of the standardised descriptors.
        y = y.to(device)
        present = torch.unique(y)
        for k in present.tolist():
            module.centers[k] = z[y == k].mean(0).float()
            module.has_center[k] = 1.0
        # 4. One temperature for softmax(-d / T) by NLL on the train rows, over the classes that have a mean.
        d = torch.cdist(z, module.centers[present].double()).cpu().numpy()
        column = {k: j for j, k in enumerate(present.tolist())}
        labels = np.array([column[k] for k in y.tolist()])
        if len(present) > 1:
            module.log_temperature.fill_(float(np.log(TemperatureScaler().fit(-d, labels).temperature_)))
        return [
            {
                "train_accuracy": float((d.argmin(1) == labels).mean()),
                "temperature": float(module.log_temperature.exp()),
            }
        ]

    def distances(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Distances to each class mean in the standardised descriptor space, ``[N, K]`` (``inf`` for classes
        that had no train rows)."""
        # _build makes a NearestClassMean and _train refuses any other module.
        return self._map(inputs, lambda module, xb: cast(NearestClassMean, module).distances(xb), self.num_classes_)

    def known_score(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """``-min_k d_k``: minus the distance to the nearest class mean."""
        return -self.distances(inputs).min(-1)
