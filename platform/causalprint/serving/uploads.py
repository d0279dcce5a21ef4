"""Bytes of one request image -> the model's canonical array, through the scan's own intake."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalprint.imaging.errors import ImageDecodeError
from causalprint.imaging.intake import IntakeConfig, decode_image, sniff_format
from causalprint.serving.config import LimitsConfig
from causalprint.serving.errors import ApiError


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray  # uint8 [S, S, 3]
    info: dict[str, object]


def intake_for(size: int, limits: LimitsConfig) -> IntakeConfig:
    return IntakeConfig(size=size, max_bytes=limits.max_image_bytes, max_pixels=limits.max_pixels)


def describe_intake(size: int) -> str:
    return f"centre-cropped to a square and resized to {size}x{size} px (Lanczos)"


def decode_upload(data: bytes, name: str, intake: IntakeConfig) -> Decoded:
    """Decode ``data`` (the format is sniffed from the bytes, never taken from the name or the content type);
    raises :class:`ApiError` with the intake's reason."""
    try:
        image = decode_image(data, name, intake)
    except ImageDecodeError as exc:
        raise ApiError.from_image(exc, name) from None
    return Decoded(image, {"format": sniff_format(data), "bytes": len(data), "intake": describe_intake(intake.size)})
