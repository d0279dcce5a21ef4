"""Untrusted bytes -> one canonical ``(size, size, 3)`` uint8 RGB array, or an :class:`ImageDecodeError`.

Every check that can refuse an input cheaply runs before the expensive one: byte count, then the format from
the file's signature, then the pixel count from the header, and only then the pixel decode. The policy is
described in ``docs/image-intake.md``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Literal, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import Field

from causalprint.config import StrictModel
from causalprint.imaging.errors import ImageDecodeError, ImageErrorKind

# Signatures of formats we may refuse, so a refusal names the format without running that format's decoder.
_SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("PNG", lambda d: d.startswith(b"\x89PNG\r\n\x1a\n")),
    ("JPEG", lambda d: d.startswith(b"\xff\xd8\xff")),
    ("WEBP", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP"),
    ("GIF", lambda d: d[:6] in (b"GIF87a", b"GIF89a")),
    ("BMP", lambda d: d[:2] == b"BM" and int.from_bytes(d[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)),
    ("TIFF", lambda d: d[:4] in (b"II*\x00", b"MM\x00*")),
    ("JPEG2000", lambda d: d.startswith(b"\x00\x00\x00\x0cjP  ") or d.startswith(b"\xff\x4f\xff\x51")),
    ("HEIF/AVIF", lambda d: d[4:8] == b"ftyp" and d[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"avif")),
    ("JPEG XL", lambda d: d.startswith(b"\xff\x0a") or d.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n")),
    ("PSD", lambda d: d.startswith(b"8BPS")),
    ("QOI", lambda d: d.startswith(b"qoif")),
)

T = TypeVar("T")
_SIXTEEN_BIT_GREY = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


class IntakeConfig(StrictModel):
    """What intake accepts and the canonical size it produces."""

    size: int = Field(default=32, ge=8, description="side of the canonical square image")
    max_bytes: int = Field(default=25 * 1024**2, ge=1, description="largest encoded file accepted")
    max_pixels: int = Field(default=50_000_000, ge=1, description="largest width*height accepted, from the header")
    formats: tuple[Literal["PNG", "JPEG", "WEBP"], ...] = Field(default=("PNG", "JPEG", "WEBP"), min_length=1)


def sniff_format(data: bytes) -> str | None:
    """The format named by ``data``'s signature, or None when no known signature matches."""
    for name, matches in _SIGNATURES:
        if matches(data):
            return name
    return None


def decode_image(data: bytes, uri: str, config: IntakeConfig) -> np.ndarray:
    """Decode untrusted ``data`` into a ``(config.size, config.size, 3)`` uint8 RGB array (:func:`canonicalize`).

    Raises :class:`ImageDecodeError` and nothing else; ``uri`` only labels the error.
    """
    return decode_with(data, uri, config, lambda image: canonicalize(image, config.size))


def decode_with(data: bytes, uri: str, config: IntakeConfig, finish: Callable[[Image.Image], T]) -> T:
    """Every check of :func:`decode_image`, then ``finish`` on the decoded, upright image (any PIL mode, full
    resolution): the one decoder behind the canonical image and the native-resolution tiles. A failure inside
    ``finish`` is classified like a decode failure, so this raises :class:`ImageDecodeError` and nothing else.
    """
    if len(data) == 0:
        raise ImageDecodeError(uri, ImageErrorKind.EMPTY, "file is empty (0 bytes)")
    if len(data) > config.max_bytes:
        raise ImageDecodeError(
            uri, ImageErrorKind.TOO_LARGE_BYTES, f"{len(data)} bytes exceeds max_bytes {config.max_bytes}"
        )
    sniffed = sniff_format(data)
    if sniffed is not None and sniffed not in config.formats:
        raise ImageDecodeError(
            uri, ImageErrorKind.UNSUPPORTED_FORMAT, f"format {sniffed} is not one of {', '.join(config.formats)}"
        )
    image = _open(data, uri, config, sniffed)
    with image:
        width, height = image.size
        if width * height > config.max_pixels:
            raise _too_many_pixels(uri, width, height, config)
        if width == 0 or height == 0:
            raise ImageDecodeError(uri, ImageErrorKind.CORRUPT, f"header declares an empty {width}x{height} image")
        try:
            image.load()
            return finish(_apply_orientation(image))
        except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, EOFError, MemoryError, ...
            raise _classify(exc, data, uri, sniffed) from exc


def _open(data: bytes, uri: str, config: IntakeConfig, sniffed: str | None) -> Image.Image:
    """Read the header only (PIL decodes pixels lazily), trying just the allowed formats' plugins."""
    try:
        # PIL's JPEG opener also yields multi-picture JPEGs (format "MPO", from phones): they are JPEGs to us.
        return Image.open(io.BytesIO(data), formats=list(config.formats))
    except Image.DecompressionBombError as exc:
        # PIL's own global limit (2 * MAX_IMAGE_PIXELS) fired first; same refusal as ours.
        raise ImageDecodeError(uri, ImageErrorKind.TOO_MANY_PIXELS, f"PIL's limit: {exc}") from exc
    except UnidentifiedImageError as exc:
        if sniffed is None:
            raise ImageDecodeError(
                uri, ImageErrorKind.NOT_AN_IMAGE, f"no image signature of {', '.join(config.formats)} found"
            ) from exc
        raise _classify(exc, data, uri, sniffed) from exc
    except Exception as exc:
        raise _classify(exc, data, uri, sniffed) from exc


def _too_many_pixels(uri: str, width: int, height: int, config: IntakeConfig) -> ImageDecodeError:
    return ImageDecodeError(
        uri,
        ImageErrorKind.TOO_MANY_PIXELS,
        f"{width}x{height} = {width * height} pixels exceeds max_pixels {config.max_pixels}",
    )


def _looks_truncated(data: bytes, fmt: str | None) -> bool:
    """Whether the file ends before its format's end marker (used only to name a failure, never to refuse)."""
    if fmt == "PNG":
        return b"IEND" not in data[-16:]
    if fmt == "JPEG":
        return b"\xff\xd9" not in data[-64:]
    if fmt == "WEBP":
        return int.from_bytes(data[4:8], "little") + 8 > len(data)
    return False


def _classify(exc: BaseException, data: bytes, uri: str, fmt: str | None) -> ImageDecodeError:
    if isinstance(exc, UnidentifiedImageError):
        detail = "PIL cannot read its header"  # PIL's own message embeds a memory address
    else:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, MemoryError):
        return ImageDecodeError(uri, ImageErrorKind.CORRUPT, f"ran out of memory decoding ({detail})")
    if isinstance(exc, EOFError) or "truncated" in str(exc) or _looks_truncated(data, fmt):
        return ImageDecodeError(uri, ImageErrorKind.TRUNCATED, f"{fmt or 'image'} data ends early ({detail})")
    return ImageDecodeError(uri, ImageErrorKind.CORRUPT, f"{fmt or 'image'} data is damaged ({detail})")


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip per the EXIF Orientation tag; an unreadable EXIF block leaves the pixels as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF is common in the wild and says nothing about the pixels
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB. Alpha (and palette/colour-key transparency) is composited on black;
    16-bit greyscale is scaled (``v / 257``, rounded), not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_GREY:
        # Integer round(v / 257) = (2v + 257) // 514: no float64 copy of a possibly 50-Mpx image.
        wide = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        return Image.fromarray(((wide * 2 + 257) // 514).astype(np.uint8)).convert("RGB")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        out = Image.new("RGB", rgba.size, (0, 0, 0))
        out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return out
    return image.convert("RGB")


def canonicalize(image: Image.Image, size: int) -> np.ndarray:
    """THE crop/resize policy for every image of every dataset: centre-crop to the largest square, then one
    antialiased Lanczos resample (PIL's kernel widens with the reduction factor) to ``size`` x ``size``.

    Odd leftover pixels of the crop go to the right/bottom. Returns a fresh ``(size, size, 3)`` uint8 array.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    rgb = to_rgb(image)
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # crop() then resize(), not resize(box=...): with a box, PIL's kernel also reads pixels beyond the box
    # edges, so the discarded margins would bleed into the border of the result.
    square = rgb.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    return np.array(square, dtype=np.uint8)
