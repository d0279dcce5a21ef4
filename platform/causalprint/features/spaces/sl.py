"""SL space: supervised CNN features of the residual (EfficientNet-Lite0 with its real ImageNet weights)."""

from __future__ import annotations

from typing import Any

import torch

from causalprint.features.efficientnet import EMBED_DIM, EfficientNetLite0Embedder, weights_path
from causalprint.features.spaces._common import (
    check_residuals,
    file_sha256,
    reject_unknown,
    residual_to_unit_image,
)
from causalprint.features.spaces.base import FeatureSpace


class EfficientNetSpace(FeatureSpace):
    """``[N, 3, S, S]`` -> ``[N, 1280]``: global-average-pooled penultimate features of EfficientNet-Lite0.

    The residual goes through the fixed map ``img = 0.5 + gain * r / 4`` (:func:`residual_to_unit_image`), is
    resized (bilinear) to ``input_size`` (default 64) and normalised with the ImageNet mean/std, as the network
    was trained. Options: ``input_size``, ``gain`` (default 1.0), ``micro_batch`` (images per forward pass;
    default 64 on CPU, where larger batches fall out of cache and run slower per image, 1024 elsewhere).
    """

    name = "sl"

    def __init__(self, image_size: int, device: str | torch.device = "cpu", **options: Any) -> None:
        super().__init__(image_size, device)
        self.input_size = int(options.pop("input_size", 64))
        self.gain = float(options.pop("gain", 1.0))
        self.micro_batch = int(options.pop("micro_batch", 64 if self.device.type == "cpu" else 1024))
        reject_unknown(self.name, options)
        if self.input_size < 32 or self.micro_batch < 1:
            raise ValueError(f"need input_size >= 32 and micro_batch >= 1, got {self.input_size}, {self.micro_batch}")
        self._embedder = EfficientNetLite0Embedder(input_size=self.input_size, device=self.device)
        self._weights_sha256 = file_sha256(weights_path())

    @property
    def dim(self) -> int:
        return EMBED_DIM

    def embed(self, residuals: torch.Tensor) -> torch.Tensor:
        x = check_residuals(residuals, self.image_size).to(self.device, torch.float32)
        # The network is frozen: build a graph only when the caller wants gradients w.r.t. the residual.
        with torch.set_grad_enabled(torch.is_grad_enabled() and x.requires_grad):
            images = residual_to_unit_image(x, self.gain)
            chunks = [self._embedder.forward_features(c) for c in images.split(self.micro_batch)]
            return torch.cat(chunks).float() if chunks else torch.zeros(0, EMBED_DIM, device=self.device)

    def identity(self) -> dict[str, str]:
        return {
            "name": self.name,
            "model": "efficientnet-lite0-imagenet",
            "weights_sha256": self._weights_sha256,
            "input_size": str(self.input_size),
            "gain": repr(self.gain),
        }
