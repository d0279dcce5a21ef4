"""The validation split depends on the image, not on where the storage root is: the same features under a local
root and under an S3 root keep the same validation rows (issue 26: the split hashed the absolute URI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from causalprint.attribution.dataset import DataConfig, split_attribution_data
from causalprint.storage import Storage, StorageConfig

SOURCES = {"real": "real", "sd-a": "diffusion", "gan-a": "gan"}
PER_SOURCE = 40  # train rows per source; val_fraction 0.1 takes 4 of each


def features_table(storage: Storage) -> pa.Table:
    """One row per image under ``storage``'s root; the vector's first value is the row's number, so the rows that
    land in each split can be told apart by their vectors."""
    rows: dict[str, list] = {k: [] for k in ("uri", "source", "arch", "family", "split", "ok", "reference_id")}
    for source, family in SOURCES.items():
        for split, count in (("train", PER_SOURCE), ("heldout", 5)):
            for i in range(count):
                rows["uri"].append(storage.uri("zoo", "tiny", "images", source, split, f"{i:03d}.png"))
                rows["source"].append(source)
                rows["arch"].append(source)
                rows["family"].append(family)
                rows["split"].append(split)
                rows["ok"].append(True)
                rows["reference_id"].append("ref-1")
    n = len(rows["uri"])
    values = np.zeros((n, 4), dtype=np.float32)
    values[:, 0] = np.arange(n)
    column = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), 4)
    return pa.table({**rows, "one_step.dct": column})


def val_rows(table: pa.Table, storage: Storage | None) -> set[int]:
    cfg = DataConfig(features="features/synth", columns=["one_step.dct"])
    data = split_attribution_data(table, cfg, storage)
    assert len(data.y_val) == 4 * len(SOURCES)
    return {int(v) for v in data.x_val[:, 0]}


def test_validation_rows_survive_a_move_to_another_root(tmp_path: Path) -> None:
    local = Storage(StorageConfig(root=str(tmp_path / "a")))
    moved = Storage(StorageConfig(root=str(tmp_path / "elsewhere" / "b")))
    s3 = Storage(StorageConfig(root="s3://archive/causalprint"))  # never contacted: only its root is read
    tables = {name: features_table(store) for name, store in (("local", local), ("moved", moved), ("s3", s3))}
    assert tables["local"]["uri"][0].as_py() != tables["s3"]["uri"][0].as_py()

    chosen = val_rows(tables["local"], local)
    assert chosen == val_rows(tables["moved"], moved) == val_rows(tables["s3"], s3)
    # The old rule (the absolute URI) gave each root its own validation rows: the test would catch its return.
    assert val_rows(tables["local"], None) != val_rows(tables["s3"], None)


def test_a_uri_outside_the_root_is_hashed_as_written(tmp_path: Path) -> None:
    """A table whose URIs name another root (written by hand, or copied without its images) still splits."""
    elsewhere = Storage(StorageConfig(root="s3://other-bucket/data"))
    table = features_table(elsewhere)
    local = Storage(StorageConfig(root=str(tmp_path)))
    assert val_rows(table, local) == val_rows(table, None)
