"""One image's answer without reading Parquet: a report's rows as an aligned table, CSV or JSON lines.

``causalprint scan SOURCE --show N`` prints the first N rows after the summary; ``causalprint report PREFIX``
prints or exports the rows of a report already written. Rows come sorted by file URI.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

import pyarrow.compute as pc

from causalprint.data.parts import list_parts, read_parts
from causalprint.runtime.job_config import JobConfig
from causalprint.scan.errors import ScanError
from causalprint.storage import Storage
from causalprint.text import printable

RowFormat = Literal["table", "csv", "jsonl"]
COLUMNS = (
    "uri",
    "predicted",
    "architecture",
    "confidence",
    "unknown",
    "intake",
    "tiles",
    "tiles_agreeing",
    "ok",
    "error_kind",
    "error",
)
TILE_COLUMNS = ("intake", "tiles", "tiles_agreeing")  # absent from reports written before tiles: read if there


class ReportJobConfig(JobConfig):
    """``causalprint report``: where storage is and which report to read (the scan's ``report:`` line)."""

    prefix: str


def report_rows(storage: Storage, prefix: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` rows (all when None) of the report at ``prefix``, sorted by URI."""
    prefix = storage.resolve(prefix)
    parts = list_parts(storage, prefix)
    if not parts:
        raise ScanError(f"no scan report rows under {prefix}")
    # Above the model=<...> folders (the scan's output), rows of several models would mix: name them instead.
    models = sorted({s for part in parts for s in part[len(prefix) :].split("/") if s.startswith("model=")})
    if len(models) > 1:
        raise ScanError(f"{prefix} holds the reports of several models ({', '.join(models)}): add one to the path")
    table = read_parts(storage, prefix, columns=[c for c in COLUMNS if c not in TILE_COLUMNS], optional=TILE_COLUMNS)
    indices = pc.sort_indices(table, sort_keys=[("uri", "ascending")])
    if limit is not None:
        indices = indices[:limit]
    return [{c: row.get(c) for c in COLUMNS} for row in table.take(indices).to_pylist()]


def _decision(row: dict[str, Any]) -> str:
    """The predicted label (a source, ``"<family> (exact model unknown)"`` or ``"unknown"``); ``-`` for an error."""
    return str(row["predicted"]) if row["ok"] else "-"


def _read_as(row: dict[str, Any]) -> str:
    """``tiles 3/4`` (3 of 4 tiles decide as the image does), ``native`` or ``resize``; empty for an error."""
    if not row["ok"] or not row.get("intake"):
        return ""
    if row["intake"] == "tiles":
        return f"tiles {row['tiles_agreeing']}/{row['tiles']}"
    return str(row["intake"])


def format_rows(rows: list[dict[str, Any]], fmt: RowFormat = "table") -> str:
    """``rows`` as an aligned, escaped table (file, decision, confidence, unknown, how it was read, error), CSV or
    JSON lines (every column of :data:`COLUMNS`; CSV and JSON keep names as stored, so write them to a file)."""
    if fmt == "jsonl":
        return "\n".join(json.dumps(row, sort_keys=True) for row in rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    cells = [["file", "decision", "architecture", "confidence", "unknown", "intake", "error"]]
    for row in rows:
        confidence = "" if row["confidence"] is None else f"{row['confidence']:.3f}"
        unknown = "" if row["unknown"] is None else ("yes" if row["unknown"] else "no")
        error = f"{row['error_kind']}: {row['error']}" if not row["ok"] else ""
        cells.append(
            [
                printable(row["uri"]),
                printable(_decision(row)),
                printable(row["architecture"] or ""),
                confidence,
                unknown,
                _read_as(row),
                printable(error),
            ]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
