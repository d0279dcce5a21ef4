"""to_uint8, encode_image and file_suffix."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from image_samples import noise
from PIL import Image
from pydantic import ValidationError

from causalprint.imaging import EncodingConfig, IntakeConfig, decode_image, encode_image, file_suffix, to_uint8


def test_to_uint8_maps_the_range_and_clips() -> None:
    values = np.array([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], dtype=np.float32)
    chw = np.broadcast_to(values, (3, 1, 7)).copy()
    out = to_uint8(chw)
    assert out.shape == (1, 7, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 64, 128, 191, 255, 255])  # 63.75 -> 64, 191.25 -> 191


def test_to_uint8_moves_channels_last_for_batches() -> None:
    batch = torch.zeros(2, 3, 4, 5)
    batch[1, 2] = 1.0  # second image: blue channel full
    out = to_uint8(batch)
    assert out.shape == (2, 4, 5, 3)
    assert (out[1, ..., 2] == 255).all() and (out[1, ..., :2] == 128).all() and (out[0] == 128).all()


def test_to_uint8_accepts_half_precision_tensors() -> None:
    assert (to_uint8(torch.full((3, 2, 2), -1.0, dtype=torch.bfloat16)) == 0).all()


def test_uint8_channel_last_passes_through() -> None:
    array = noise(4, 5)
    assert to_uint8(array) is array


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((3, 4), np.float32),  # no channel axis
        np.zeros((5, 4, 4), np.float32),  # 5 channels
        np.zeros((3, 5, 5), np.uint8),  # uint8 but channels first
        np.zeros((3, 2, 2), np.int64),  # neither float nor uint8
    ],
)
def test_to_uint8_refuses_ambiguous_shapes(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        to_uint8(bad)


def test_to_uint8_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(np.full((3, 2, 2), np.nan, np.float32))


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_encoding_is_deterministic_and_metadata_free(fmt: str) -> None:
    array = noise(32, 32, seed=1)
    config = EncodingConfig(format=fmt, quality=80)
    first, second = encode_image(array, config), encode_image(array.copy(), config)
    assert first == second
    with Image.open(io.BytesIO(first)) as image:
        assert image.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
        assert not image.getexif() and "icc_profile" not in image.info


def test_png_round_trips_exactly() -> None:
    array = noise(17, 23, seed=2)
    with Image.open(io.BytesIO(encode_image(array, EncodingConfig()))) as image:
        np.testing.assert_array_equal(np.array(image), array)


def test_encoded_png_passes_intake_unchanged() -> None:
    array = noise(32, 32, seed=4)  # already canonical: intake must return it bit for bit
    decoded = decode_image(encode_image(array, EncodingConfig()), "mem://x", IntakeConfig())
    np.testing.assert_array_equal(decoded, array)


def test_quality_changes_lossy_output() -> None:
    array = noise(32, 32, seed=3)
    low, high = (encode_image(array, EncodingConfig(format="jpeg", quality=q)) for q in (20, 95))
    assert len(low) < len(high)


def test_encode_refuses_wrong_arrays() -> None:
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)):
        with pytest.raises(ValueError):
            encode_image(bad, EncodingConfig())


def test_suffixes_and_config() -> None:
    assert [file_suffix(EncodingConfig(format=f)) for f in ("png", "jpeg", "webp")] == [".png", ".jpg", ".webp"]
    for bad in ({"format": "gif"}, {"quality": 0}, {"quality": 101}):
        with pytest.raises(ValidationError):
            EncodingConfig(**bad)
