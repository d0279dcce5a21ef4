"""Partitioned results: parts named by their URIs, resume by row, reading back with a row selection."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from causalprint.data.parts import (
    batch_to_table,
    done_uris,
    drop_rows,
    list_parts,
    part_columns,
    read_parts,
    vectors,
    write_batch_part,
    write_rows_part,
)
from causalprint.storage import Storage, StorageConfig


def _storage(tmp_path) -> Storage:
    return Storage(StorageConfig(root=str(tmp_path)))


def test_a_row_selection_keeps_only_its_rows_in_part_order(tmp_path) -> None:
    storage = _storage(tmp_path)
    folder = storage.resolve("features/x")
    parts = {"a": ["dcgan", "real", "dcgan"], "b": ["vae", "dcgan"]}
    for name, sources in parts.items():
        uris = np.array([f"{name}{i}" for i in range(len(sources))], dtype=object)
        write_rows_part(
            storage,
            folder,
            uris,
            pa.table({"uri": list(uris), "source": sources, "v": [float(i) for i in range(len(sources))]}),
        )
    everything = read_parts(storage, "features/x")
    kept = read_parts(storage, "features/x", columns=["uri", "source"], rows=~pc.field("source").isin(["dcgan"]))
    assert kept.column_names == ["uri", "source"]
    assert kept["uri"].to_pylist() == [
        u for u, s in zip(everything["uri"].to_pylist(), everything["source"].to_pylist()) if s != "dcgan"
    ]
    assert sorted(kept["source"].to_pylist()) == ["real", "vae"]
    assert read_parts(storage, "features/x", rows=pc.field("source") == "none").num_rows == 0


def test_a_batch_written_again_replaces_its_part_and_resume_skips_its_rows(tmp_path) -> None:
    storage = _storage(tmp_path)
    batch = {
        "uri": np.array(["b", "a"], dtype=object),
        "vec": np.eye(2, 3, dtype=np.float32),
        "ok": np.array([True, False]),
    }
    assert write_batch_part(batch, storage, "out")["written"].tolist() == [2]
    write_batch_part(batch, storage, "out")  # a retried batch, after an interruption
    later = {"uri": np.array(["c"], dtype=object), "vec": np.ones((1, 3), np.float32), "ok": np.array([True])}
    write_rows_part(storage, storage.resolve("out/run=2"), later["uri"], batch_to_table(later))  # a subfolder too
    assert len(list_parts(storage, "out")) == 2
    assert done_uris(storage, "out") == {"a", "b", "c"}
    table = read_parts(storage, "out")
    assert sorted(table["uri"].to_pylist()) == ["a", "b", "c"]
    assert part_columns(storage, "out") == ["ok", "uri", "vec"]
    rows = {u: v for u, v in zip(table["uri"].to_pylist(), vectors(table, "vec"))}
    assert vectors(table, "vec").dtype == np.float32
    np.testing.assert_array_equal(rows["b"], [1, 0, 0])
    np.testing.assert_array_equal(rows["c"], [1, 1, 1])


def test_an_empty_prefix_has_nothing_done_and_no_rows(tmp_path) -> None:
    storage = _storage(tmp_path)
    assert done_uris(storage, "none") == set()
    assert part_columns(storage, "none") is None
    with pytest.raises(FileNotFoundError, match="no parts under"):
        read_parts(storage, "none")


def test_retryable_and_error_rows_are_pending_again_and_dropped_before_their_new_answer(tmp_path) -> None:
    storage = _storage(tmp_path)
    folder = storage.resolve("report/run=1")
    rows = {"uri": ["a", "b", "c", "d"], "ok": [True, False, False, False], "retryable": [False, False, True, None]}
    write_rows_part(storage, folder, np.array(rows["uri"][:2]), pa.table({k: v[:2] for k, v in rows.items()}))
    write_rows_part(storage, folder, np.array(rows["uri"][2:]), pa.table({k: v[2:] for k, v in rows.items()}))
    # A part of a report written before the column existed: its rows count as they did.
    write_rows_part(storage, folder, np.array(["e"]), pa.table({"uri": ["e"], "ok": [False]}))
    assert done_uris(storage, "report") == {"a", "b", "d", "e"}
    assert done_uris(storage, "report", retry_errors=True) == {"a"}

    assert drop_rows(storage, "report", {"c", "e", "unknown"}) == 2
    assert sorted(read_parts(storage, "report")["uri"].to_pylist()) == ["a", "b", "d"]
    assert len(list_parts(storage, "report")) == 2  # the part left empty is gone, the other rewritten whole
    assert drop_rows(storage, "report", set()) == 0
