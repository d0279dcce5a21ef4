"""A folder that mixes image sizes, as an archive does: small images (the model's size), the zoo's own size, and
large real photographs, each with its known answer, for the scan's decisions and throughput per size.

- **small**: a tile of each held-out zoo image at the one-tile position of attribution's grid (its centre): native
  pixels at the model's size;
- **zoo**: the held-out zoo images themselves;
- **large**: ``large`` px squares cut from real photographs at native resolution (no resampling), JPEG q95 as
  archives hold them; their answer is ``real``.

The folder is ``<folder>/<small|zoo|large>/``; built once (its files are deterministic), then read by the scans.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
from PIL import Image

from causalprint.data.photos import PhotoSetConfig, load_photo_groups
from causalprint.imaging.tiles import tile_positions
from causalprint.storage import Storage, StorageConfig

REAL = "real"
SIZES = ("small", "zoo", "large")


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def build_mixed_folder(
    storage: Storage,
    heldout: pa.Table,
    folder: str,
    size: int,
    per_size: int,
    photos: PhotoSetConfig,
    large: int,
    photo_storage: StorageConfig | None = None,
) -> pa.Table:
    """Write the mixed folder from ``heldout`` (manifest rows: ``uri``, ``source``, ``arch``), ``per_size`` images of
    each size (the zoo's taken evenly over its sources); returns the truth table (``uri``, ``source``, ``arch``,
    ``size``)."""
    rows: list[dict[str, str]] = []
    by_source: dict[str, list[dict]] = {}
    for row in heldout.to_pylist():
        by_source.setdefault(row["source"], []).append(row)
    take = max(1, -(-per_size // len(by_source)))
    chosen = [r for rows_of in by_source.values() for r in rows_of[:take]][:per_size]
    for row in chosen:
        name = row["uri"].rsplit("/", 1)[-1]
        data = storage.read_bytes(row["uri"])
        with Image.open(io.BytesIO(data)) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        x, y = tile_positions(rgb.shape[1], rgb.shape[0], size, 1)[0]
        for kind, payload in (("small", _encode(rgb[y : y + size, x : x + size], "PNG")), ("zoo", data)):
            uri = storage.uri(folder, kind, name)
            if not storage.exists(uri):
                storage.write_bytes(uri, payload)
            rows.append({"uri": uri, "source": row["source"], "arch": row["arch"], "size": kind})
    photos_by_group = load_photo_groups(photos, photo_storage)
    pictures = [p for group in sorted(photos_by_group) for p in photos_by_group[group] if min(p.shape[:2]) >= large]
    if not pictures:
        raise ValueError(f"no photograph of {photos.uri or photos.source} holds a {large} px square")
    for i in range(per_size):
        picture = pictures[i % len(pictures)]
        height, width = picture.shape[:2]
        # Crops of one photograph step along its diagonal, 8-aligned, so they differ and stay native.
        step = i // len(pictures)
        x = (step * 136) % max(1, width - large + 1) // 8 * 8
        y = (step * 72) % max(1, height - large + 1) // 8 * 8
        uri = storage.uri(folder, "large", f"photo-{i:03d}.jpg")
        if not storage.exists(uri):
            storage.write_bytes(uri, _encode(picture[y : y + large, x : x + large], "JPEG"))
        rows.append({"uri": uri, "source": REAL, "arch": REAL, "size": "large"})
    return pa.Table.from_pylist(rows)
