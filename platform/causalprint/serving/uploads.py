"""Bytes of one request image -> the model's input (its native tiles, or the canonical array), through the scan's
own intake."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalprint.imaging.errors import ImageDecodeError
from causalprint.imaging.intake import sniff_format
from causalprint.imaging.tiles import AttributionIntakeConfig, TileOptions, Tiles, decode_tiles
from causalprint.serving.config import LimitsConfig
from causalprint.serving.errors import ApiError


@dataclass(frozen=True)
class Decoded:
    tiles: Tiles
    slots: int  # tiles per image in a model batch (the intake's)
    info: dict[str, object]

    @property
    def image(self) -> np.ndarray:
        """The first tile, uint8 ``[S, S, 3]``: the whole canonical image unless the image was tiled."""
        return self.tiles.images[0]

    @property
    def padded(self) -> np.ndarray:
        """uint8 ``[slots, S, S, 3]``: the tiles, then zeros (the model reads the first ``count``)."""
        return self.tiles.padded(self.slots)

    @property
    def count(self) -> int:
        return len(self.tiles.images)


def intake_for(size: int, limits: LimitsConfig, tiles: TileOptions) -> AttributionIntakeConfig:
    return AttributionIntakeConfig(
        size=size, max_bytes=limits.max_image_bytes, max_pixels=limits.max_pixels, mode=tiles.mode, tiles=tiles.tiles
    )


def describe_intake(tiles: Tiles, size: int) -> str:
    if tiles.intake == "tiles":
        return f"{len(tiles.images)} tiles of {size}x{size} px at native resolution, decided together"
    if tiles.intake == "native":
        return f"read as it is ({size}x{size} px, the model's size)"
    return f"centre-cropped to a square and resized to {size}x{size} px (Lanczos)"


def decode_upload(data: bytes, name: str, intake: AttributionIntakeConfig) -> Decoded:
    """Decode ``data`` (the format is sniffed from the bytes, never taken from the name or the content type);
    raises :class:`ApiError` with the intake's reason."""
    try:
        tiles = decode_tiles(data, name, intake)
    except ImageDecodeError as exc:
        raise ApiError.from_image(exc, name) from None
    info: dict[str, object] = {
        "format": sniff_format(data),
        "bytes": len(data),
        "width": tiles.width,
        "height": tiles.height,
        "intake": describe_intake(tiles, intake.size),
        "intake_mode": tiles.intake,
        "tiles": [list(p) for p in tiles.positions],
    }
    return Decoded(tiles, intake.slots, info)
