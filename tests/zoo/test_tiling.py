"""A tile zoo: each image's native tiles at attribution's grid positions, pixel for pixel, in the parent's split,
with the parent's labels; the job cuts once and a rerun reads what was cut."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from causalprint.imaging.tiles import tile_positions
from causalprint.jobs import zoo_tile
from causalprint.storage import Storage, StorageConfig
from causalprint.zoo.manifest import MANIFEST_SCHEMA
from causalprint.zoo.tiling import tile_zoo


def _zoo(storage: Storage) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    rows, pixels = [], {}
    for source, split in (("real", "train"), ("gan", "heldout")):
        image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)  # 48 wide, 64 high
        uri = storage.uri("zoo", "images", source, split, f"{source}_{split}_00000.png")
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        storage.write_bytes(uri, buffer.getvalue())
        pixels[uri] = image
        rows.append(
            {"uri": uri, "source": source, "arch": source, "family": source, "content_group": "mate", "seed": 0}
            | {"split": split, "index": 0}
        )
    storage.write_parquet(storage.uri("zoo", "manifest.parquet"), pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA))
    return pixels


def test_each_tile_is_the_parents_pixels_at_the_grid_position(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    pixels = _zoo(storage)
    table = tile_zoo(storage, "zoo/manifest.parquet", "tiles", size=32, tiles=4)
    positions = tile_positions(48, 64, 32, 4)
    assert table.num_rows == 2 * len(positions) and len(positions) == 4
    for row in table.to_pylist():
        x, y = positions[row["tile"]]
        with Image.open(io.BytesIO(storage.read_bytes(row["uri"]))) as tile:
            assert np.array_equal(np.asarray(tile), pixels[row["parent"]][y : y + 32, x : x + 32])
        source = row["source"]
        assert f"/images/{source}/{row['split']}/" in row["uri"]
        assert row["split"] == ("train" if source == "real" else "heldout")  # a parent's tiles keep its split


def test_the_job_cuts_once_and_a_rerun_reads_the_manifest(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    _zoo(storage)
    config = zoo_tile.ZooTileConfig.model_validate(
        {
            "storage": {"root": str(tmp_path)},
            "tile": {"manifest": "zoo/manifest.parquet", "output": "tiles", "size": 32, "tiles": 2},
        }
    )
    first = zoo_tile.run(config)
    assert not first["skipped"] and first["tiles"] == 4 and first["parents"] == 2
    assert first["by_source"] == {"real": 2, "gan": 2}
    again = zoo_tile.run(config)
    assert again["skipped"] and again["tiles"] == 4
