"""Feature rows in storage: Parquet parts written atomically, one per batch, named by the URIs they hold.

A killed job leaves only whole parts. A rerun reads the ``uri`` column of the parts already there and skips
those images, so no row is lost or written twice; a retried batch rewrites the same part name.
"""

from __future__ import annotations

import hashlib
import io
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from causalprint.storage import Storage

PART_SUFFIX = ".parquet"


def _column(values: np.ndarray) -> pa.Array:
    if values.ndim == 2:  # fixed-length vectors
        flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    if values.dtype == object:
        return pa.array([str(v) if v is not None else None for v in values], pa.string())
    return pa.array(values)


def batch_to_table(batch: dict[str, np.ndarray]) -> pa.Table:
    names = sorted(batch)
    return pa.table({name: _column(batch[name]) for name in names})


def part_name(uris: list[str]) -> str:
    return "part-" + hashlib.sha256("\n".join(sorted(uris)).encode()).hexdigest()[:20] + PART_SUFFIX


def write_rows_part(storage: Storage, folder: str, uris: np.ndarray, table: pa.Table) -> int:
    """Write ``table``, the rows of ``uris``, as one part under ``folder``; returns its row count. The part's
    name is a hash of its URIs, so a batch written again after an interruption replaces its part, never adds
    a second one."""
    names = [str(u) for u in uris]
    storage.write_parquet(f"{folder}/{part_name(names)}", table)
    return len(names)


def write_part(batch: dict[str, np.ndarray], storage: Storage, output: str) -> dict[str, np.ndarray]:
    """Ray Data stage: write one batch as a part; pass on only the row count."""
    written = write_rows_part(storage, storage.resolve(output), batch["uri"], batch_to_table(batch))
    return {"written": np.array([written])}


def list_parts(storage: Storage, output: str) -> list[str]:
    return [f.uri for f in storage.list_files(output, (PART_SUFFIX,)) if f.uri.rsplit("/", 1)[-1].startswith("part-")]


def done_uris(storage: Storage, output: str) -> set[str]:
    """URIs of every row already written under ``output``."""
    done: set[str] = set()
    for uri in list_parts(storage, output):
        done.update(pq.read_table(io.BytesIO(storage.read_bytes(uri)), columns=["uri"])["uri"].to_pylist())
    return done


def load_features(storage: Storage, output: str, columns: list[str] | None = None,
                  rows: pc.Expression | None = None) -> pa.Table:
    """All rows under ``output`` as one table (parts concatenated in name order); ``rows`` keeps only the rows
    it selects, part by part, so rows left out never sit in memory together."""
    tables = []
    for uri in list_parts(storage, output):
        table = pq.read_table(io.BytesIO(storage.read_bytes(uri)), columns=columns)
        tables.append(table if rows is None else table.filter(rows))
    if not tables:
        raise FileNotFoundError(f"no feature parts under {storage.resolve(output)}")
    return pa.concat_tables(tables, promote_options="default")


def vectors(table: pa.Table, column: str) -> np.ndarray:
    """A fixed-size-list column as a float32 matrix ``[rows, dim]``."""
    chunked = table[column].combine_chunks()
    return chunked.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1).astype(np.float32, copy=False)

