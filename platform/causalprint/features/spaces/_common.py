"""Small helpers shared by the feature spaces: input checks, the residual-to-image map, weight hashes."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch


def check_residuals(residuals: torch.Tensor, image_size: int) -> torch.Tensor:
    """Reject anything but ``[N, 3, image_size, image_size]``; a wrong size would silently change ``dim``."""
    if residuals.ndim != 4 or residuals.shape[1] != 3 or residuals.shape[2:] != (image_size, image_size):
        raise ValueError(f"expected residuals [N, 3, {image_size}, {image_size}], got {list(residuals.shape)}")
    return residuals


def reject_unknown(space: str, options: dict[str, Any]) -> None:
    """A misspelt option must fail loudly, not fall back to a default."""
    if options:
        raise TypeError(f"unknown options for the {space} space: {sorted(options)}")


def residual_to_unit_image(residuals: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """The fixed affine map ``img = 0.5 + gain * r / 4`` from residuals to an image-like input.

    With ``gain = 1`` the full residual range [-2, 2] lands on [0, 1], the range the pretrained networks were
    fed; a zero residual is mid-grey. Values are not clipped, so large residuals keep their gradient. ``gain``
    > 1 spreads the typically small residuals over more of the network's input range.
    """
    return 0.5 + (gain / 4.0) * residuals


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, cached per (path, size, mtime) so that re-creating a space does not re-read it."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
