"""Partitioned results in storage: rows keyed by image URI, as Parquet parts under one prefix.

Every job that writes a row per image uses this module: extraction (feature rows), the scan (its report),
anonymization (its report) and evaluation (which reads the extraction outputs back).

- **Atomic parts.** A batch is written as one part, ``part-<hash of its URIs>.parquet``, through
  :meth:`~causalprint.storage.Storage.write_parquet`, which is atomic. A killed job leaves only whole parts, and
  a batch written again after an interruption replaces its own part instead of adding a second one.
- **Resume by row.** :func:`done_uris` reads only the ``uri`` column of every part under the prefix (and
  ``retryable``/``ok`` where asked); a rerun skips those URIs, so no row is lost or written twice. A row marked
  ``retryable`` (a transient read error) is not done: :func:`drop_rows` takes it out of its part, atomically,
  before the rerun writes its new answer, so each URI keeps one row.
- **Read back.** :func:`read_parts` concatenates every part under the prefix (subfolders included, such as the
  scan's ``run=<id>/``), in name order, optionally keeping only some columns and rows.

Vectors are stored as fixed-size lists of float32 (:func:`batch_to_table`) and read back as matrices
(:func:`vectors`).
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
PART_PREFIX = "part-"


def _column(values: np.ndarray) -> pa.Array:
    if values.ndim == 2:  # fixed-length vectors
        flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    if values.dtype == object:
        return pa.array([str(v) if v is not None else None for v in values], pa.string())
    return pa.array(values)


def batch_to_table(batch: dict[str, np.ndarray]) -> pa.Table:
    """A batch of numpy columns as a table, columns sorted by name; 2-D columns become fixed-size lists."""
    names = sorted(batch)
    return pa.table({name: _column(batch[name]) for name in names})


def part_name(uris: list[str]) -> str:
    """``part-<20 hex of the sorted URIs' hash>.parquet``: the same rows always get the same name."""
    return PART_PREFIX + hashlib.sha256("\n".join(sorted(uris)).encode()).hexdigest()[:20] + PART_SUFFIX


def write_rows_part(storage: Storage, folder: str, uris: np.ndarray, table: pa.Table) -> int:
    """Write ``table``, the rows of ``uris``, as one part under ``folder``; returns its row count. The part's
    name is a hash of its URIs, so a batch written again after an interruption replaces its part, never adds
    a second one."""
    names = [str(u) for u in uris]
    storage.write_parquet(f"{folder}/{part_name(names)}", table)
    return len(names)


def write_batch_part(batch: dict[str, np.ndarray], storage: Storage, output: str) -> dict[str, np.ndarray]:
    """Ray Data stage: write one batch (keyed by its ``uri`` column) as a part under ``output``; pass on only
    the row count."""
    written = write_rows_part(storage, storage.resolve(output), batch["uri"], batch_to_table(batch))
    return {"written": np.array([written])}


def list_parts(storage: Storage, prefix: str) -> list[str]:
    """The URIs of every part under ``prefix``, subfolders included, in name order."""
    return [
        f.uri for f in storage.list_files(prefix, (PART_SUFFIX,)) if f.uri.rsplit("/", 1)[-1].startswith(PART_PREFIX)
    ]


RETRYABLE = "retryable"


def done_uris(storage: Storage, prefix: str, *, retry_errors: bool = False) -> set[str]:
    """URIs of every row already written under ``prefix``, but those marked ``retryable`` (and with
    ``retry_errors``, every error row: ``ok`` false): the rows a rerun does not read again. Only those columns
    are read."""
    return written_uris(storage, prefix, retry_errors=retry_errors)[0]


def written_uris(storage: Storage, prefix: str, *, retry_errors: bool = False) -> tuple[set[str], set[str]]:
    """``(done, again)``: the URIs of the rows under ``prefix`` that a rerun skips (:func:`done_uris`), and of
    those it reads again, whose rows :func:`drop_rows` takes out before their new answer is written."""
    done: set[str] = set()
    again: set[str] = set()
    for uri in list_parts(storage, prefix):
        source = io.BytesIO(storage.read_bytes(uri))
        names = set(pq.read_schema(source).names)
        wanted = [
            "uri",
            *([RETRYABLE] if RETRYABLE in names else []),
            *(["ok"] if retry_errors and "ok" in names else []),
        ]
        table = pq.read_table(source, columns=wanted)
        keep = pa.array(np.ones(table.num_rows, dtype=bool))
        if RETRYABLE in wanted:
            keep = pc.and_(keep, pc.invert(pc.fill_null(table[RETRYABLE], False)))
        if "ok" in wanted:
            keep = pc.and_(keep, pc.fill_null(table["ok"], False))
        done.update(table["uri"].filter(keep).to_pylist())
        again.update(table["uri"].filter(pc.invert(keep)).to_pylist())
    return done, again


def drop_rows(storage: Storage, prefix: str, uris: set[str]) -> int:
    """Take the rows of ``uris`` out of the parts under ``prefix`` (before they are written again); returns how
    many rows went. Each part is rewritten whole under its own name (atomic) or deleted when nothing is left, so a
    crash in between leaves whole parts, and a row either in place or absent (then pending again)."""
    if not uris:
        return 0
    dropped = 0
    wanted = pa.array(sorted(uris), pa.string())
    for uri in list_parts(storage, prefix):
        table = pq.read_table(io.BytesIO(storage.read_bytes(uri)))
        hit = pc.is_in(table["uri"], value_set=wanted)
        count = int(pc.sum(hit).as_py() or 0)
        if not count:
            continue
        dropped += count
        if count == table.num_rows:
            storage.delete(uri)
        else:
            storage.write_parquet(uri, table.filter(pc.invert(hit)))
    return dropped


def part_columns(storage: Storage, prefix: str) -> list[str] | None:
    """The column names of the first part under ``prefix`` (its schema only, no rows); None without parts."""
    parts = list_parts(storage, prefix)
    if not parts:
        return None
    return pq.read_schema(io.BytesIO(storage.read_bytes(parts[0]))).names


def read_parts(
    storage: Storage,
    prefix: str,
    columns: list[str] | None = None,
    rows: pc.Expression | None = None,
    optional: tuple[str, ...] = (),
) -> pa.Table:
    """All rows under ``prefix`` as one table (parts concatenated in name order); ``rows`` keeps only the rows
    it selects, part by part, so rows left out never sit in memory together. ``optional`` columns are read too
    where a part has them (null elsewhere; absent when no part has them). FileNotFoundError without parts."""
    tables = []
    for uri in list_parts(storage, prefix):
        source = io.BytesIO(storage.read_bytes(uri))
        wanted = columns
        if columns is not None and optional:
            names = set(pq.read_schema(source).names)
            wanted = [*columns, *(c for c in optional if c in names and c not in columns)]
        table = pq.read_table(source, columns=wanted)
        tables.append(table if rows is None else table.filter(rows))
    if not tables:
        raise FileNotFoundError(f"no parts under {storage.resolve(prefix)}")
    return pa.concat_tables(tables, promote_options="default")


def vectors(table: pa.Table, column: str) -> np.ndarray:
    """A fixed-size-list column as a float32 matrix ``[rows, dim]``."""
    chunked = table[column].combine_chunks()
    return chunked.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1).astype(np.float32, copy=False)
