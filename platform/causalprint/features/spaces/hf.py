"""HF space: a pretrained vision model (ViT, DINO, CLIP's vision tower, ...) from a local transformers folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from causalprint.features.spaces._common import (
    check_residuals,
    file_sha256,
    reject_unknown,
    residual_to_unit_image,
)
from causalprint.features.spaces.base import FeatureSpace

_POOLINGS = ("auto", "pooler", "cls", "mean")


def checkpoint_sha256(directory: Path) -> str:
    """sha256 of ``model.safetensors``; for a sharded checkpoint, sha256 over the sorted ``name:sha256`` lines."""
    shards = sorted(directory.glob("*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"no .safetensors weights in {directory}")
    if len(shards) == 1:
        return file_sha256(shards[0])
    lines = "".join(f"{p.name}:{file_sha256(p)}\n" for p in shards)
    return hashlib.sha256(lines.encode()).hexdigest()


def _normalisation(directory: Path) -> tuple[list[float], list[float]]:
    """The checkpoint's own image mean/std (``preprocessor_config.json``), else 0.5/0.5."""
    config_path = directory / "preprocessor_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        if "image_mean" in config and "image_std" in config:
            return [float(v) for v in config["image_mean"]], [float(v) for v in config["image_std"]]
    return [0.5] * 3, [0.5] * 3


def _load_vision_model(directory: Path, device: torch.device) -> tuple[nn.Module, bool]:
    """The vision tower of the checkpoint in eval mode, and whether its pooler was trained (not re-initialised)."""
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(
        directory, local_files_only=True, use_safetensors=True, dtype=torch.float32, output_loading_info=True
    )
    missing = sorted(info["missing_keys"])
    # A checkpoint saved from a task head (e.g. ViTForImageClassification) lacks the pooler; transformers then
    # draws it at random, which would make the space differ between processes. Any other gap is an error.
    pooler_missing = any(".pooler." in f".{k}" for k in missing)
    others = [k for k in missing if ".pooler." not in f".{k}"]
    if others:
        raise ValueError(f"checkpoint {directory} lacks weights {others[:5]} (of {len(others)}); refusing random init")
    # Dual-encoder checkpoints (CLIP, SigLIP) keep the image tower in ``vision_model``; others are the tower.
    vision = getattr(model, "vision_model", model)
    return vision.to(device).eval().requires_grad_(False), not pooler_missing


def _image_size(vision: nn.Module) -> int:
    size = getattr(vision.config, "image_size", 224)
    return int(size[0] if isinstance(size, list | tuple) else size)


class HuggingFaceSpace(FeatureSpace):
    """``[N, 3, S, S]`` -> ``[N, hidden]``: pooled output of a local transformers vision checkpoint.

    Options: ``path`` (required: a folder with ``config.json`` and ``*.safetensors``), ``gain`` (default 1.0, see
    :func:`residual_to_unit_image`), ``pooling``: ``"auto"`` (default: ``pooler_output`` if the checkpoint
    trained it, else the CLS token, else the spatial mean), ``"pooler"``, ``"cls"`` or ``"mean"``. The residual is
    mapped to an image, resized (bilinear) to the checkpoint's ``image_size`` and normalised with its mean/std.
    """

    name = "hf"

    def __init__(self, image_size: int, device: str | torch.device = "cpu", **options: Any) -> None:
        super().__init__(image_size, device)
        if "path" not in options:
            raise TypeError("the hf space needs options['path']: a local transformers checkpoint folder")
        self.path = Path(options.pop("path"))
        self.gain = float(options.pop("gain", 1.0))
        self.pooling = str(options.pop("pooling", "auto"))
        reject_unknown(self.name, options)
        if self.pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}, got {self.pooling!r}")
        self.model, self._pooler_trained = _load_vision_model(self.path, self.device)
        if self.pooling == "pooler" and not self._pooler_trained:
            raise ValueError(f"checkpoint {self.path} has no trained pooler; use pooling='cls' or 'auto'")
        self.input_size = _image_size(self.model)
        mean, std = _normalisation(self.path)
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self._weights_sha256 = checkpoint_sha256(self.path)
        with torch.no_grad():
            self._dim = int(self.embed(torch.zeros(1, 3, image_size, image_size)).shape[1])

    @property
    def dim(self) -> int:
        return self._dim

    def _pool(self, outputs: Any) -> torch.Tensor:
        pooled = getattr(outputs, "pooler_output", None)
        if self.pooling in ("auto", "pooler") and pooled is not None and self._pooler_trained:
            return pooled.flatten(1)  # conv backbones pool to [N, C, 1, 1]
        hidden = outputs.last_hidden_state
        if hidden.ndim == 3 and self.pooling != "mean":
            return hidden[:, 0]
        return hidden.mean(dim=1) if hidden.ndim == 3 else hidden.mean(dim=(2, 3))

    def embed(self, residuals: torch.Tensor) -> torch.Tensor:
        x = check_residuals(residuals, self.image_size).to(self.device, torch.float32)
        x = residual_to_unit_image(x, self.gain)
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        outputs = self.model(pixel_values=(x - self._mean) / self._std)
        return self._pool(outputs).float()

    def identity(self) -> dict[str, str]:
        return {
            "name": self.name,
            "checkpoint": self.path.name,
            "weights_sha256": self._weights_sha256,
            "pooling": self.pooling,
            "gain": repr(self.gain),
        }
