"""Native-resolution tiles: exact pixel copies at positions fixed by the image's size, the model's own size read
as it is, and smaller images (or ``mode: resize``) read as the canonical resize."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from causalprint.imaging.errors import ImageDecodeError
from causalprint.imaging.intake import IntakeConfig, decode_image
from causalprint.imaging.tiles import ALIGN, AttributionIntakeConfig, TileOptions, decode_tiles, tile_positions


def _png(pixels: np.ndarray, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **save)
    return buffer.getvalue()


def _noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_tiles_of_a_64px_image_are_exact_copies_at_fixed_positions() -> None:
    pixels = _noise(64, 64)  # white noise: any resampling would change almost every value
    config = AttributionIntakeConfig(size=32)
    tiles = decode_tiles(_png(pixels), "mem://a.png", config)
    assert tiles.intake == "tiles" and (tiles.width, tiles.height) == (64, 64)
    assert tiles.positions == ((0, 0), (32, 0), (0, 32), (32, 32))  # the 2x2 grid covers the image
    assert tiles.images.dtype == np.uint8 and tiles.images.shape == (4, 32, 32, 3)
    for tile, (x, y) in zip(tiles.images, tiles.positions):
        assert np.array_equal(tile, pixels[y : y + 32, x : x + 32])
    # Deterministic per image: the same pixels in other bytes (another compression level) get the same tiles.
    again = decode_tiles(_png(pixels, compress_level=1), "mem://b.png", config)
    assert again.positions == tiles.positions and np.array_equal(again.images, tiles.images)


@pytest.mark.parametrize(("width", "height", "count"), [(1024, 768, 4), (100, 60, 6), (33, 200, 4), (48, 48, 9)])
def test_positions_lie_on_the_block_grid_inside_the_image(width: int, height: int, count: int) -> None:
    positions = tile_positions(width, height, 32, count)
    assert 1 <= len(positions) <= count and len(set(positions)) == len(positions)
    for x, y in positions:
        assert x % ALIGN == 0 and y % ALIGN == 0 and 0 <= x <= width - 32 and 0 <= y <= height - 32
    assert tile_positions(width, height, 32, count) == positions
    assert tile_positions(33, 33, 32, 4) == ((0, 0),)  # only one offset on the grid
    assert tile_positions(32, 100, 32, 4) == ((0, 0), (0, 16), (0, 40), (0, 64))  # all down the strip
    assert tile_positions(100, 100, 32, 1) == ((32, 32),)  # one tile: the middle


def test_the_models_size_is_read_as_it_is_and_smaller_or_resize_as_before() -> None:
    config = AttributionIntakeConfig(size=32)
    square = _noise(32, 32)
    native = decode_tiles(_png(square), "mem://s.png", config)
    assert native.intake == "native" and native.positions == ((0, 0),) and np.array_equal(native.images[0], square)

    canonical = IntakeConfig(size=32)
    for shape in ((20, 50), (31, 31)):  # a side shorter than the model's: no tile fits, the canonical resize
        data = _png(_noise(*shape))
        small = decode_tiles(data, "mem://small.png", config)
        assert small.intake == "resize" and small.positions == () and len(small.images) == 1
        assert np.array_equal(small.images[0], decode_image(data, "mem://small.png", canonical))

    large = _png(_noise(64, 80))
    resized = decode_tiles(large, "mem://l.png", AttributionIntakeConfig(size=32, mode="resize"))
    assert resized.intake == "resize" and np.array_equal(resized.images[0], decode_image(large, "x", canonical))
    assert resized.padded(1).shape == (1, 32, 32, 3)
    padded = decode_tiles(large, "mem://l.png", config).padded(6)
    assert padded.shape == (6, 32, 32, 3) and not padded[4:].any()


def test_tile_options_are_checked_and_bad_bytes_refused() -> None:
    assert TileOptions().mode == "tiles" and TileOptions().slots == 4 and TileOptions(mode="resize").slots == 1
    for bad in ({"tiles": 0}, {"tiles": 65}, {"mode": "crop"}, {"tiles": "4"}):
        with pytest.raises(ValidationError):
            AttributionIntakeConfig(size=32, **bad)
    with pytest.raises(ImageDecodeError, match="not_an_image"):
        decode_tiles(b"plain text", "mem://notes.png", AttributionIntakeConfig(size=32))
