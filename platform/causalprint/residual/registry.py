"""The residual modes, by name."""

from __future__ import annotations

from typing import Any

import torch

from causalprint.registry import Registry
from causalprint.residual.modes.base import ResidualMode
from causalprint.residual.reference import ReferenceModel

RESIDUAL_MODES: Registry[type[ResidualMode]] = Registry(
    "residual mode",
    {
        "dire": "causalprint.residual.modes.dire:DireMode",
        "one_step": "causalprint.residual.modes.one_step:OneStepMode",
        "latent": "causalprint.residual.modes.latent:LatentMode",
        "image": "causalprint.residual.modes.image:ImageMode",
    },
)


def create_mode(
    name: str, reference: ReferenceModel, autocast: torch.dtype | None = None, **options: Any
) -> ResidualMode:
    """Build the residual mode ``name`` over ``reference``."""
    return RESIDUAL_MODES.get(name)(reference, autocast=autocast, **options)
