"""Feature parts: a row selection applied part by part keeps the selected rows, in order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from causalprint.extraction.parts import load_features, write_rows_part
from causalprint.storage import Storage, StorageConfig


def test_a_row_selection_keeps_only_its_rows_in_part_order(tmp_path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    folder = storage.resolve("features/x")
    parts = {"a": ["dcgan", "real", "dcgan"], "b": ["vae", "dcgan"]}
    for name, sources in parts.items():
        uris = np.array([f"{name}{i}" for i in range(len(sources))], dtype=object)
        write_rows_part(storage, folder, uris, pa.table({"uri": list(uris), "source": sources,
                                                         "v": [float(i) for i in range(len(sources))]}))
    everything = load_features(storage, "features/x")
    kept = load_features(storage, "features/x", columns=["uri", "source"],
                         rows=~pc.field("source").isin(["dcgan"]))
    assert kept.column_names == ["uri", "source"]
    assert kept["uri"].to_pylist() == [u for u, s in zip(everything["uri"].to_pylist(),
                                                          everything["source"].to_pylist()) if s != "dcgan"]
    assert sorted(kept["source"].to_pylist()) == ["real", "vae"]
    assert load_features(storage, "features/x", rows=pc.field("source") == "none").num_rows == 0
