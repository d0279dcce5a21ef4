"""What a collection holds: counts per source, files that failed intake and why, manifest entries with no file."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from causalprint.config import StrictModel
from causalprint.text import printable

if TYPE_CHECKING:
    import ray.data

STATUS_COLUMNS = ("uri", "ok", "error_kind", "error")
UNLISTED = "unlisted"


class InventoryFailure(StrictModel):
    """One file that did not become an image."""

    uri: str
    kind: str
    reason: str


class InventoryReport(StrictModel):
    """Summary of one read of a collection. ``by_source`` counts ok images per manifest source (all manifest
    sources listed, zeros included; ok files absent from the manifest under ``"unlisted"``, present only when
    there are any; empty without a manifest)."""

    prefix: str
    total: int
    ok: int
    failed: int
    by_source: dict[str, int]
    missing: list[str]
    failures: list[InventoryFailure]
    skipped: dict[str, int] = {}
    """Entries not listed, on purpose (ignore patterns, files being written), per reason."""


def build_inventory(
    dataset_or_rows: ray.data.Dataset | pa.Table | Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]],
    prefix: str,
    manifest: pa.Table | None = None,
) -> InventoryReport:
    """Count a :func:`~causalprint.data.read_collection` result (a dataset, an Arrow table, a column batch or
    row dicts). A dataset is reduced to its status columns in the workers, so no image reaches the driver;
    it is executed here, so ``materialize()`` it first if it is also consumed elsewhere.

    ``manifest`` needs ``uri`` and ``source`` columns; its URIs are matched exactly against the full URIs in the
    rows (resolve them with :meth:`Storage.resolve` first).
    """
    rows = _status_rows(dataset_or_rows)
    uris: list[str] = rows.column("uri").to_pylist()
    oks: list[bool] = rows.column("ok").to_pylist()
    kinds: list[str] = rows.column("error_kind").to_pylist()
    reasons: list[str] = rows.column("error").to_pylist()
    failures = sorted(
        (
            InventoryFailure(uri=u, kind=k, reason=r)
            for u, ok, k, r in zip(uris, oks, kinds, reasons, strict=True)
            if not ok
        ),
        key=lambda f: f.uri,
    )
    by_source: dict[str, int] = {}
    missing: list[str] = []
    if manifest is not None:
        source_of = _sources(manifest)
        by_source = dict.fromkeys(sorted(set(source_of.values())), 0)
        counts = Counter(source_of.get(u, UNLISTED) for u, ok in zip(uris, oks, strict=True) if ok)
        by_source.update(counts)
        missing = sorted(set(source_of) - set(uris))
    ok_count = sum(oks)
    return InventoryReport(
        prefix=prefix,
        total=len(uris),
        ok=ok_count,
        failed=len(uris) - ok_count,
        by_source=by_source,
        missing=missing,
        failures=failures,
    )


def _status_rows(data: Any) -> pa.Table:
    """The four status columns of any accepted input, as one Arrow table."""
    if hasattr(data, "select_columns") and hasattr(data, "iter_batches"):  # a Ray dataset
        batches = data.select_columns(list(STATUS_COLUMNS)).iter_batches(batch_format="pyarrow", batch_size=None)
        tables = [t.select(list(STATUS_COLUMNS)) for t in batches if t.num_rows]
        return pa.concat_tables(tables) if tables else _empty_status()
    if isinstance(data, pa.Table):
        return data.select(list(STATUS_COLUMNS))
    if isinstance(data, Mapping):
        return pa.table({c: pa.array(list(data[c])) for c in STATUS_COLUMNS})
    rows = [{c: row[c] for c in STATUS_COLUMNS} for row in data]
    return pa.Table.from_pylist(rows) if rows else _empty_status()


def _empty_status() -> pa.Table:
    return pa.table(
        {
            "uri": pa.array([], pa.string()),
            "ok": pa.array([], pa.bool_()),
            "error_kind": pa.array([], pa.string()),
            "error": pa.array([], pa.string()),
        }
    )


def _sources(manifest: pa.Table) -> dict[str, str]:
    absent = {"uri", "source"} - set(manifest.column_names)
    if absent:
        raise ValueError(f"manifest lacks column(s) {sorted(absent)}; it has {manifest.column_names}")
    source_of: dict[str, str] = {}
    pairs = zip(manifest.column("uri").to_pylist(), manifest.column("source").to_pylist(), strict=True)
    for uri, source in pairs:
        if source == UNLISTED:
            raise ValueError(f"manifest source name {UNLISTED!r} is reserved (uri {uri})")
        if source_of.setdefault(uri, source) != source:
            raise ValueError(f"manifest lists {uri} under two sources: {source_of[uri]!r} and {source!r}")
    return source_of


def format_inventory(report: InventoryReport) -> str:
    """A plain-text report: totals, ok images per source, failures with their reasons, missing files."""
    totals = [["files", report.total], ["ok", report.ok], ["failed", report.failed]]
    totals.append(["missing", len(report.missing)])
    totals += [[f"skipped: {reason}", count] for reason, count in report.skipped.items()]
    lines = [f"Inventory of {printable(report.prefix)}", *_table(None, totals)]
    if report.by_source:
        per_source = [[source, count] for source, count in report.by_source.items()]
        lines += ["", "ok images per source", *_table(["source", "ok"], per_source)]
    if report.failures:
        lines += [
            "",
            f"failures ({len(report.failures)})",
            *_table(
                ["kind", "uri", "reason"], [[f.kind, printable(f.uri), printable(f.reason)] for f in report.failures]
            ),
        ]
    if report.missing:
        lines += ["", f"missing: in the manifest, no file ({len(report.missing)})"]
        lines += [f"  {printable(uri)}" for uri in report.missing]
    return "\n".join(lines)


def _table(headers: list[str] | None, rows: list[list[Any]]) -> list[str]:
    """Aligned columns, numbers right-aligned; the last column is not padded (reasons can be long)."""
    cells = ([headers] if headers else []) + [[str(c) for c in row] for row in rows]
    columns = len(cells[0])
    widths = [max(len(r[i]) for r in cells) for i in range(columns)]
    numeric = [all(isinstance(row[i], int) for row in rows) for i in range(columns)]
    out = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else (cell if i == len(row) - 1 else cell.ljust(widths[i]))
            for i, cell in enumerate(row)
        ]
        out.append("  " + "  ".join(parts).rstrip())
    return out
