"""The feature spaces the extractor can compute, by name."""

from __future__ import annotations

from typing import Any

import torch

from causalprint.features.spaces.base import FeatureSpace
from causalprint.registry import Registry

FEATURE_SPACES: Registry[type[FeatureSpace]] = Registry(
    "feature space",
    {
        "rgb": "causalprint.features.spaces.rgb:RGBSpace",
        "dct": "causalprint.features.spaces.dct:DCTSpace",
        "fourier": "causalprint.features.spaces.fourier:FourierSpace",
        "sl": "causalprint.features.spaces.sl:EfficientNetSpace",
        "ssl": "causalprint.features.spaces.ssl:SelfSupervisedSpace",
        "hf": "causalprint.features.spaces.hf:HuggingFaceSpace",
    },
)


def create_space(name: str, image_size: int, device: str | torch.device = "cpu", **options: Any) -> FeatureSpace:
    """Build the feature space ``name``."""
    return FEATURE_SPACES.get(name)(image_size, device=device, **options)
