"""The zoo manifest: one row per image, naming its source, family, content group, seed and split."""

from __future__ import annotations

import pyarrow as pa

from causalprint.storage import Storage

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("arch", pa.string(), nullable=False),
        pa.field("family", pa.string(), nullable=False),
        pa.field("content_group", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("index", pa.int64(), nullable=False),
    ]
)


def manifest_uri(storage: Storage, zoo) -> str:
    """Where a zoo's manifest lives (``zoo`` is a :class:`~causalprint.zoo.config.ZooConfig`)."""
    return storage.uri(zoo.prefix, "manifest.parquet")


def read_manifest(storage: Storage, uri: str) -> pa.Table:
    """Read a manifest and check it has the expected columns."""
    table = storage.read_parquet(uri)
    missing = [n for n in MANIFEST_SCHEMA.names if n not in table.column_names]
    if missing:
        raise ValueError(f"{uri} is not a zoo manifest: missing columns {missing}")
    return table
