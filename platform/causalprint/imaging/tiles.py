"""Native-resolution tiles: an image larger than the model's size read as up to ``k`` crops of the model's size,
pixels copied as stored, never resampled.

**Where the tiles sit: a fixed grid.** ``k`` tiles form a grid of ``floor(sqrt(k))`` rows by ``ceil(k / rows)``
columns (more of them along the longer side), taken row by row; along each axis the offsets are spread evenly
from the first pixel to the last whole tile and floored to a multiple of 8, and equal offsets count once (so a
33 px image gives one tile, however large ``k``); where one axis has room for one offset only, all ``k`` are
spread along the other. A grid, not a seeded draw: the positions depend only on the
image's size, so the same pixels get the same tiles whatever file format or metadata carries them (a hash of
the bytes would move them on a re-encode), they cover the image from corner to corner, and a reader can say
where each tile came from. Multiples of 8 keep every tile on the JPEG block grid and in the same phase of an
upsampling stride (8 is a multiple of the 2x and 4x strides of the generators), as a model's training images
are.

**Other sizes.** An image of exactly the model's size is one tile, unchanged (``native``). An image with a side
shorter than the model's size cannot hold a tile: it is read as before (``resize``: the centre square, one
Lanczos resample up, :func:`~causalprint.imaging.intake.canonicalize`), and so is every image with
``mode: resize``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import Field

from causalprint.config import StrictModel
from causalprint.imaging.intake import IntakeConfig, canonicalize, decode_with, to_rgb

ALIGN = 8  # tile offsets are multiples of this: the JPEG block, and a multiple of generators' upsampling strides
IntakeKind = Literal["tiles", "resize", "native"]


class TileOptions(StrictModel):
    """How attribution reads an image larger than the model's size."""

    mode: Literal["tiles", "resize"] = Field(
        default="tiles",
        description="tiles: up to `tiles` crops of the model's size at native resolution, decided together; "
        "resize: the centre square resized to the model's size (Lanczos), which erases high frequencies",
    )
    tiles: int = Field(default=4, ge=1, le=64, strict=True, description="tiles per image at most (mode: tiles)")

    @property
    def slots(self) -> int:
        """Tiles per image in a batch: ``tiles``, or 1 with ``mode: resize``."""
        return self.tiles if self.mode == "tiles" else 1


class AttributionIntakeConfig(TileOptions, IntakeConfig):
    """The intake of the scan, the API and enrolment: :class:`IntakeConfig`'s limits and size, plus how a larger
    image is read (:class:`TileOptions`; tiles by default)."""


@dataclass(frozen=True)
class Tiles:
    """One image as the model reads it: ``images`` uint8 ``[n, S, S, 3]`` (``n`` >= 1), each tile's top-left
    ``(x, y)`` in the upright image (``()`` when resized), how it was read, and the decoded image's size."""

    images: np.ndarray
    positions: tuple[tuple[int, int], ...]
    intake: IntakeKind
    width: int
    height: int

    def padded(self, slots: int) -> np.ndarray:
        """``images`` in ``slots`` rows (zeros after the last tile), for a fixed-shape batch column."""
        if len(self.images) > slots:
            raise ValueError(f"{len(self.images)} tiles do not fit in {slots} slots")
        out = np.zeros((slots, *self.images.shape[1:]), dtype=np.uint8)
        out[: len(self.images)] = self.images
        return out


def _offsets(span: int, count: int) -> list[int]:
    """``count`` offsets in ``[0, span]``, evenly spread (one: the middle), floored to :data:`ALIGN`, distinct."""
    if count == 1:
        raw = [span // 2]
    else:
        raw = [round(i * span / (count - 1)) for i in range(count)]
    return list(dict.fromkeys(r // ALIGN * ALIGN for r in raw))


def tile_positions(width: int, height: int, size: int, count: int) -> tuple[tuple[int, int], ...]:
    """Top-left ``(x, y)`` of at most ``count`` ``size`` x ``size`` tiles of a ``width`` x ``height`` image, by the
    fixed grid of the module docstring."""
    if width < size or height < size or count < 1:
        raise ValueError(f"a {width}x{height} image holds no {size} px tile (count {count})")
    rows = math.isqrt(count)
    cols = -(-count // rows)
    if height > width:
        rows, cols = cols, rows
    xs, ys = _offsets(width - size, cols), _offsets(height - size, rows)
    if len(xs) == 1:  # no room across: every tile goes down the image (and across, for a wide strip)
        ys = _offsets(height - size, count)
    elif len(ys) == 1:
        xs = _offsets(width - size, count)
    return tuple((x, y) for y in ys for x in xs)[:count]


def cut_tiles(image: Image.Image, size: int, options: TileOptions) -> Tiles:
    """``image`` (any PIL mode, upright) as the model reads it: native tiles of a larger image (``mode: tiles``),
    the image itself at exactly ``size``, else :func:`canonicalize`. Tiles are exact copies of the pixels."""
    rgb = to_rgb(image)
    width, height = rgb.size
    if (width, height) == (size, size):
        return Tiles(np.array(rgb, dtype=np.uint8)[None], ((0, 0),), "native", width, height)
    if options.mode == "tiles" and min(width, height) >= size:
        positions = tile_positions(width, height, size, options.tiles)
        crops = [np.array(rgb.crop((x, y, x + size, y + size)), dtype=np.uint8) for x, y in positions]
        return Tiles(np.stack(crops), positions, "tiles", width, height)
    return Tiles(canonicalize(rgb, size)[None], (), "resize", width, height)


def decode_tiles(data: bytes, uri: str, config: AttributionIntakeConfig) -> Tiles:
    """Untrusted ``data`` -> :class:`Tiles` (:func:`cut_tiles`), after every check of
    :func:`~causalprint.imaging.intake.decode_image`; raises :class:`~causalprint.imaging.ImageDecodeError` and
    nothing else."""
    return decode_with(data, uri, config, lambda image: cut_tiles(image, config.size, config))
