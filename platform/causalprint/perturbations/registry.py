"""The perturbations by name."""

from __future__ import annotations

from typing import Any

from causalprint.perturbations.base import Perturbation
from causalprint.registry import Registry

PERTURBATIONS: Registry[type[Perturbation]] = Registry(
    "perturbation",
    {
        "none": "causalprint.perturbations.kinds.identity:Identity",
        "jpeg": "causalprint.perturbations.kinds.jpeg:Jpeg",
        "resize": "causalprint.perturbations.kinds.resize:ResizeRoundTrip",
        "center_crop": "causalprint.perturbations.kinds.crop:CenterCrop",
        "blur": "causalprint.perturbations.kinds.blur:GaussianBlur",
        "noise": "causalprint.perturbations.kinds.noise:GaussianNoise",
    },
)


def create_perturbation(name: str, **options: Any) -> Perturbation:
    """Build the perturbation ``name`` with its options (unknown options are refused)."""
    return PERTURBATIONS.get(name)(**options)
