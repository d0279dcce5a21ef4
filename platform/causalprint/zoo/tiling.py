"""A zoo of native-resolution tiles cut from a zoo of larger images: each image's tiles at the positions
attribution reads them (:func:`~causalprint.imaging.tiles.tile_positions`), written as PNGs (lossless: the pixels
are the parent's), with a manifest that keeps the parent's source, split and content.

So an attributor learns from tiles of the model's size at native resolution, and is then tested on the parent
zoo's whole images, read as tiles or resized (``causalprint evaluate-intake``). A parent's tiles stay in its
split: no held-out image lends a tile to training.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pyarrow as pa
from PIL import Image

from causalprint.imaging.tiles import tile_positions
from causalprint.storage import Storage
from causalprint.zoo.manifest import MANIFEST_SCHEMA, read_manifest

log = logging.getLogger(__name__)

TILE_SCHEMA = MANIFEST_SCHEMA.append(pa.field("parent", pa.string(), nullable=False)).append(
    pa.field("tile", pa.int64(), nullable=False)
)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def tile_zoo(storage: Storage, manifest: str, output: str, size: int, tiles: int) -> pa.Table:
    """Cut every image of the zoo at ``manifest`` into at most ``tiles`` native ``size`` px tiles under
    ``output/images/<source>/<split>/``; write and return ``output/manifest.parquet`` (the parent's row, its tile
    URI, ``parent`` and ``tile`` index). The manifest is written last: a rerun of an interrupted cut writes the
    images again (same names, same pixels) and then the manifest."""
    parents = read_manifest(storage, manifest).to_pylist()
    rows: list[dict] = []
    for n, row in enumerate(parents):
        with Image.open(io.BytesIO(storage.read_bytes(row["uri"]))) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        height, width = rgb.shape[:2]
        stem = row["uri"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
        for t, (x, y) in enumerate(tile_positions(width, height, size, tiles)):
            uri = storage.uri(output, "images", row["source"], row["split"], f"{stem}_t{t}.png")
            storage.write_bytes(uri, _png(np.ascontiguousarray(rgb[y : y + size, x : x + size])))
            rows.append({**row, "uri": uri, "parent": row["uri"], "tile": t})
        if (n + 1) % 500 == 0:
            log.info("tiles: %d of %d images cut", n + 1, len(parents))
    table = pa.Table.from_pylist(rows, schema=TILE_SCHEMA)
    storage.write_parquet(storage.uri(output, "manifest.parquet"), table)
    return table
