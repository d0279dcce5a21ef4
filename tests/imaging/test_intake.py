"""decode_image and canonicalize: every accepted kind of input, and each refusal with its kind."""

from __future__ import annotations

import contextlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from image_samples import bomb_png, encode, header_only_png, noise, raw_png, smooth, two_tone
from PIL import Image
from pydantic import ValidationError

from causalprint.imaging import IntakeConfig, canonicalize, decode_image
from causalprint.imaging.errors import ImageDecodeError, ImageErrorKind

CFG = IntakeConfig()


def _decode(data: bytes, config: IntakeConfig = CFG) -> np.ndarray:
    out = decode_image(data, "mem://x", config)
    assert out.shape == (config.size, config.size, 3) and out.dtype == np.uint8
    return out


def _kind(data: bytes, config: IntakeConfig = CFG) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data, "mem://bad", config)
    return info.value


# -- accepted inputs -------------------------------------------------------------------------------------------


def test_png_is_exactly_the_canonical_policy() -> None:
    array = noise(48, 64)
    expected = canonicalize(Image.fromarray(array), 32)
    np.testing.assert_array_equal(_decode(encode(Image.fromarray(array), "PNG")), expected)


@pytest.mark.parametrize("fmt,options", [("JPEG", {"quality": 95}), ("WEBP", {"quality": 95})])
def test_lossy_formats_decode_close_to_the_source(fmt: str, options: dict) -> None:
    array = smooth(48, 64)
    expected = canonicalize(Image.fromarray(array), 32).astype(int)
    decoded = _decode(encode(Image.fromarray(array), fmt, **options)).astype(int)
    assert np.abs(decoded - expected).mean() < 3


def test_lossless_webp_is_exact() -> None:
    array = noise(40, 40, seed=3)
    decoded = _decode(encode(Image.fromarray(array), "WEBP", lossless=True))
    np.testing.assert_array_equal(decoded, canonicalize(Image.fromarray(array), 32))


def test_size_follows_config() -> None:
    assert _decode(encode(Image.fromarray(noise(20, 30)), "PNG"), IntakeConfig(size=8)).shape == (8, 8, 3)


def test_greyscale_becomes_three_equal_channels() -> None:
    grey = Image.fromarray(np.full((30, 30), 77, dtype=np.uint8))
    out = _decode(encode(grey, "PNG"))
    assert (out == 77).all()


def test_rgba_is_composited_on_black() -> None:
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[:, :16] = (200, 100, 50, 255)  # opaque
    rgba[:, 16:] = (200, 100, 50, 0)  # fully transparent: black, whatever the stored colour
    out = _decode(encode(Image.fromarray(rgba), "PNG"))
    np.testing.assert_array_equal(out[:, :14], np.broadcast_to([200, 100, 50], (32, 14, 3)))
    assert (out[:, 18:] == 0).all()
    half = np.full((32, 32, 4), (200, 100, 50, 128), dtype=np.uint8)
    np.testing.assert_allclose(_decode(encode(Image.fromarray(half), "PNG"))[0, 0], [100, 50, 25], atol=1)


def test_palette_with_transparency() -> None:
    image = Image.new("P", (32, 32), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert (_decode(encode(image, "PNG")) == [10, 200, 30]).all()
    assert (_decode(encode(image, "PNG", transparency=1)) == 0).all()


def test_grey_with_alpha() -> None:
    la = Image.fromarray(np.full((32, 32, 2), (120, 255), dtype=np.uint8), "LA")
    assert (_decode(encode(la, "PNG")) == 120).all()


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    wide = Image.fromarray(np.full((32, 32), 200 * 257, dtype=np.uint16))
    data = encode(wide, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert (_decode(data) == 200).all()


def test_sixteen_bit_rgb() -> None:
    row = np.tile(np.array([65535, 32896, 0], dtype=">u2"), 16).tobytes()
    data = raw_png(16, 16, [row] * 16, color_type=2, bit_depth=16)
    np.testing.assert_allclose(_decode(data)[5, 5], [255, 128, 0], atol=1)


def test_exif_orientation_is_applied() -> None:
    # As displayed: red top-left quadrant on blue. Stored rotated 90 degrees anticlockwise with Orientation=6
    # ("rotate 90 clockwise to display"), as a phone camera would write it.
    shown = np.zeros((64, 64, 3), dtype=np.uint8)
    shown[:] = (0, 0, 255)
    shown[:32, :32] = (255, 0, 0)
    stored = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = _decode(encode(stored, "JPEG", quality=95, exif=exif.tobytes())).astype(int)
    assert (np.abs(out[:12, :12] - [255, 0, 0]) < 30).all()
    assert (np.abs(out[20:, 20:] - [0, 0, 255]) < 30).all()
    assert (np.abs(out[20:, :12] - [0, 0, 255]) < 30).all()  # unrotated, red would sit bottom-left


def test_multi_picture_jpeg_counts_as_jpeg() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ("red", "blue")]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert (np.abs(_decode(data, IntakeConfig(formats=("JPEG",))).astype(int) - [255, 0, 0]) < 4).all()


# -- the crop/resize policy ------------------------------------------------------------------------------------


def test_wide_image_keeps_the_centre_square() -> None:
    # green | red | blue | green, with the centre square exactly red|blue: the green margins must vanish.
    array = two_tone(100, 40, 50, (255, 0, 0), (0, 0, 255))
    array[:, :30] = array[:, 70:] = (0, 255, 0)
    out = canonicalize(Image.fromarray(array), 16).astype(int)
    assert out[..., 1].max() < 40, "margins outside the centre square leaked in"
    assert (np.abs(out[:, :6] - [255, 0, 0]) < 8).all()
    assert (np.abs(out[:, 10:] - [0, 0, 255]) < 8).all()


def test_tall_image_keeps_the_centre_square() -> None:
    array = np.zeros((90, 30, 3), dtype=np.uint8)
    array[30:45] = (255, 0, 0)
    array[45:60] = (0, 0, 255)
    out = canonicalize(Image.fromarray(array), 8).astype(int)
    assert (np.abs(out[:3] - [255, 0, 0]) < 8).all() and (np.abs(out[5:] - [0, 0, 255]) < 8).all()


def test_policy_is_centre_crop_then_lanczos() -> None:
    image = Image.fromarray(noise(37, 81, seed=5))
    left = (81 - 37) // 2
    reference = image.crop((left, 0, left + 37, 37)).resize((16, 16), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(canonicalize(image, 16), np.array(reference))


def test_small_images_are_upsampled() -> None:
    out = canonicalize(Image.new("RGB", (4, 6), (9, 8, 7)), 32)
    assert out.shape == (32, 32, 3) and (out == [9, 8, 7]).all()


# -- refusals --------------------------------------------------------------------------------------------------


def test_empty_file() -> None:
    assert _kind(b"").kind is ImageErrorKind.EMPTY


def test_truncated_png() -> None:
    data = encode(Image.fromarray(noise(64, 64)), "PNG")
    assert _kind(data[: len(data) // 2]).kind is ImageErrorKind.TRUNCATED
    assert _kind(data[:20]).kind is ImageErrorKind.TRUNCATED  # cut inside the header


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_truncated_lossy(fmt: str) -> None:
    data = encode(Image.fromarray(noise(64, 64)), fmt)
    assert _kind(data[: len(data) // 2]).kind is ImageErrorKind.TRUNCATED


def test_damaged_png_data_is_corrupt() -> None:
    data = bytearray(encode(Image.fromarray(noise(64, 64)), "PNG"))
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    assert _kind(bytes(data)).kind is ImageErrorKind.CORRUPT


def test_text_named_jpg_is_not_an_image() -> None:
    assert _kind(b"just some notes, saved as photo.jpg\n").kind is ImageErrorKind.NOT_AN_IMAGE


def test_random_bytes_are_not_an_image() -> None:
    garbage = np.random.default_rng(11).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert _kind(garbage).kind is ImageErrorKind.NOT_AN_IMAGE


def test_decompression_bomb_refused_from_the_header() -> None:
    data = bomb_png(8000)  # 64 Mpx in ~60 KB; below PIL's own warning limit, so this is our check
    assert len(data) < 100_000
    error = _kind(data)
    assert error.kind is ImageErrorKind.TOO_MANY_PIXELS and "8000x8000" in error.reason


def test_bomb_refused_without_pils_global_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert _kind(header_only_png(20000, 20000)).kind is ImageErrorKind.TOO_MANY_PIXELS
    just_over = IntakeConfig(max_pixels=300 * 299)
    assert _kind(header_only_png(300, 300), just_over).kind is ImageErrorKind.TOO_MANY_PIXELS


def test_pils_own_bomb_error_is_mapped() -> None:
    error = _kind(header_only_png(20000, 20000), IntakeConfig(max_pixels=10**9))
    assert error.kind is ImageErrorKind.TOO_MANY_PIXELS and "PIL" in error.reason


def test_too_many_bytes() -> None:
    data = encode(Image.fromarray(noise(32, 32)), "PNG")
    error = _kind(data, IntakeConfig(max_bytes=len(data) - 1))
    assert error.kind is ImageErrorKind.TOO_LARGE_BYTES and str(len(data)) in error.reason


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_formats_outside_the_list_are_unsupported(fmt: str) -> None:
    data = encode(Image.fromarray(noise(16, 16)), fmt)
    error = _kind(data)
    assert error.kind is ImageErrorKind.UNSUPPORTED_FORMAT and fmt in error.reason


def test_format_list_is_honoured() -> None:
    data = encode(Image.fromarray(noise(16, 16)), "JPEG")
    assert _kind(data, IntakeConfig(formats=("PNG", "WEBP"))).kind is ImageErrorKind.UNSUPPORTED_FORMAT


def test_error_message_and_pickling() -> None:
    error = _kind(b"")
    assert str(error) == f"mem://bad: empty: {error.reason}"
    again = pickle.loads(pickle.dumps(error))
    assert (again.uri, again.kind, again.reason, str(again)) == (error.uri, error.kind, error.reason, str(error))


def test_mutated_files_never_raise_anything_else() -> None:
    rng = np.random.default_rng(7)
    sources = [encode(Image.fromarray(noise(24, 24)), fmt) for fmt in ("PNG", "JPEG", "WEBP")]
    for _ in range(150):
        data = bytearray(sources[rng.integers(len(sources))])
        for pos in rng.integers(0, len(data), size=rng.integers(1, 8)):
            data[pos] = rng.integers(0, 256)
        if rng.random() < 0.3:
            data = data[: rng.integers(1, len(data))]
        with contextlib.suppress(ImageDecodeError):
            _decode(bytes(data))


def test_config_is_validated() -> None:
    for bad in ({"size": 4}, {"formats": ("GIF",)}, {"formats": ()}, {"colour": "rgb"}):
        with pytest.raises(ValidationError):
            IntakeConfig(**bad)


def test_docs_example_runs() -> None:
    text = (Path(__file__).parents[2] / "docs" / "image-intake.md").read_text()
    example = text.split("## Example (run by the tests)", 1)[1]
    code = example.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/image-intake.md", "exec"), {})
