"""SSL space: a self-supervised encoder of residuals, loaded from a local folder (see
:mod:`causalprint.features.ssl_training` for how the project trains and saves one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from causalprint.features.spaces._common import check_residuals, file_sha256, reject_unknown
from causalprint.features.spaces.base import FeatureSpace
from causalprint.features.ssl_training import load_ssl_encoder


class SelfSupervisedSpace(FeatureSpace):
    """``[N, 3, S, S]`` -> ``[N, embed_dim]`` with the encoder in ``options["path"]`` (``config.json`` +
    ``model.safetensors``). The identity carries the sha256 of the weights file."""

    name = "ssl"

    def __init__(self, image_size: int, device: str | torch.device = "cpu", **options: Any) -> None:
        super().__init__(image_size, device)
        if "path" not in options:
            raise TypeError("the ssl space needs options['path']: a folder written by save_ssl_encoder")
        self.path = Path(options.pop("path"))
        reject_unknown(self.name, options)
        self.encoder = load_ssl_encoder(self.path, self.device)
        self.encoder.requires_grad_(False)
        self._weights_sha256 = file_sha256(self.path / "model.safetensors")

    @property
    def dim(self) -> int:
        return self.encoder.config.embed_dim

    def embed(self, residuals: torch.Tensor) -> torch.Tensor:
        x = check_residuals(residuals, self.image_size).to(self.device, torch.float32)
        return self.encoder(x).float()

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "checkpoint": self.path.name, "weights_sha256": self._weights_sha256}
