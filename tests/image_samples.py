"""Image files for intake tests, good and hostile, made in memory (no fixtures on disk)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def raw_png(width: int, height: int, rows: Iterable[bytes], *, color_type: int, bit_depth: int) -> bytes:
    """A PNG written by hand (PIL cannot write 16-bit RGB, nor a bomb without allocating it). ``rows`` are
    unfiltered scanlines; each gets filter byte 0."""
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(b"\x00" + row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


@lru_cache(maxsize=2)  # ~0.2 s to compress; several tests share it
def bomb_png(side: int = 8000) -> bytes:
    """A genuine decompression bomb: a one-colour greyscale ``side`` x ``side`` PNG of a few tens of KB."""
    row = bytes(side)
    return raw_png(side, side, (row for _ in range(side)), color_type=0, bit_depth=8)


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but holds only one row of data (cheap to build)."""
    return raw_png(width, height, [bytes(width)], color_type=0, bit_depth=8)


Colour = tuple[int, int, int]


def two_tone(width: int, height: int, split: int, left: Colour, right: Colour) -> np.ndarray:
    """``left`` colour in columns ``[0, split)``, ``right`` in the rest."""
    array = np.empty((height, width, 3), dtype=np.uint8)
    array[:, :split] = left
    array[:, split:] = right
    return array


def smooth(height: int, width: int) -> np.ndarray:
    """A gentle gradient: survives lossy codecs nearly unchanged, unlike noise."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], axis=2).astype(np.uint8)


def collection_files() -> tuple[dict[str, bytes], dict[str, np.ndarray], dict[str, str]]:
    """A small hostile collection: (relative name -> bytes, good name -> source pixels, bad name -> error kind).

    Lossless files' decoded pixels must equal ``canonicalize`` of the source exactly; lossy ones come close.
    ``notes/readme.txt`` has no image suffix: it is listed all the same, and intake refuses it.
    """
    good = {
        "good/a.png": noise(40, 50, seed=1),
        "good/b.jpg": smooth(48, 40),
        "good/c.webp": noise(32, 32, seed=2),
        "good/sub/d.JPEG": smooth(30, 30),
    }
    files = {
        "good/a.png": encode(Image.fromarray(good["good/a.png"]), "PNG"),
        "good/b.jpg": encode(Image.fromarray(good["good/b.jpg"]), "JPEG", quality=95),
        "good/c.webp": encode(Image.fromarray(good["good/c.webp"]), "WEBP", lossless=True),
        "good/sub/d.JPEG": encode(Image.fromarray(good["good/sub/d.JPEG"]), "JPEG", quality=95),
    }
    whole = encode(Image.fromarray(noise(64, 64, seed=3)), "PNG")
    files |= {
        "bad/truncated.png": whole[: len(whole) // 2],
        "bad/empty.png": b"",
        "bad/notes.jpg": b"meeting notes, not a photo\n",
        "bad/bomb.png": bomb_png(8000),
        "notes/readme.txt": b"a text file among the images",
    }
    bad = {
        "bad/truncated.png": "truncated",
        "bad/empty.png": "empty",
        "bad/notes.jpg": "not_an_image",
        "bad/bomb.png": "too_many_pixels",
        "notes/readme.txt": "not_an_image",
    }
    return files, good, bad
