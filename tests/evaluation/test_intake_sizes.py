"""The mixed-size folder: small tiles of the held-out images (their pixels), the images themselves, and large
native crops of real photographs, each with its answer; built again, it is the same."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from causalprint.data.photos import PhotoSetConfig
from causalprint.evaluation.intake_sizes import build_mixed_folder
from causalprint.imaging.tiles import tile_positions
from causalprint.storage import Storage, StorageConfig


def _pixels(storage: Storage, uri: str) -> np.ndarray:
    with Image.open(io.BytesIO(storage.read_bytes(uri))) as image:
        return np.asarray(image.convert("RGB"))


def test_the_folder_mixes_sizes_with_known_answers(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    rng = np.random.default_rng(0)
    rows = []
    for source in ("dcgan", "vae"):
        for i in range(2):
            uri = storage.uri("zoo", source, f"{source}-{i}.png")
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
            storage.write_bytes(uri, buffer.getvalue())
            rows.append({"uri": uri, "source": source, "arch": source})
    photos = PhotoSetConfig()  # scikit-image's sample photographs, offline
    truth = build_mixed_folder(storage, pa.Table.from_pylist(rows), "mixed", 32, 4, photos, 256)
    kinds = truth["size"].to_pylist()
    assert kinds.count("small") == kinds.count("zoo") == kinds.count("large") == 4
    by_uri = {r["uri"]: r for r in truth.to_pylist()}
    for row in truth.to_pylist():
        shape = _pixels(storage, row["uri"]).shape
        assert shape == {"small": (32, 32, 3), "zoo": (64, 64, 3), "large": (256, 256, 3)}[row["size"]]
        if row["size"] == "large":
            assert row["source"] == "real"
        if row["size"] == "small":  # the one-tile grid position of its parent, pixel for pixel
            parent = row["uri"].replace("/small/", "/zoo/")
            assert by_uri[parent]["source"] == row["source"]
            (x, y) = tile_positions(64, 64, 32, 1)[0]
            assert np.array_equal(_pixels(storage, row["uri"]), _pixels(storage, parent)[y : y + 32, x : x + 32])
    assert sorted({r["source"] for r in truth.to_pylist() if r["size"] == "zoo"}) == ["dcgan", "vae"]
    again = build_mixed_folder(storage, pa.Table.from_pylist(rows), "mixed", 32, 4, photos, 256)
    assert again.equals(truth)
