"""The scan report in storage: Hive-style partitioned Parquet parts, its pinned metadata and its summary.

Layout under the scan's ``output`` prefix::

    model=<model slug>/                 one report per attributor version (causalprint-attributor-v3, run-...)
        _scan.json                      source, model version, reference, columns, class names: pinned at first run
        _summary.json                   counts over the whole report and the throughput of the latest run
        _lease.json                     while a scan writes: its lease (one writer per report)
        run=<run id>/part-<hash>.parquet   the rows one scan invocation wrote (a resumed scan adds a new run)

Each part is written atomically and named by a hash of its URIs (:func:`causalprint.data.parts.write_rows_part`),
so a killed scan leaves only whole parts and a retried batch rewrites the same file. A rerun skips every URI
already in the report, so across runs each image appears exactly once. Read the report with
``pyarrow.dataset.dataset(prefix, partitioning="hive")`` (files starting with ``_`` are skipped), or part by part.

Columns: ``uri``, ``predicted`` (label: a source, ``"<family> (exact model unknown)"`` or ``"unknown"``),
``source_family``, ``architecture`` (the attributor's architecture answer, also for unknown sources; null for a
model trained without class architectures), ``probabilities`` (one float per class; the class names are the schema
metadata ``causalprint.class_names`` and ``_scan.json``'s ``class_names``), ``confidence``, ``unknown``,
``model_version``, ``reference_id``, how the image was read (``intake``: ``tiles``, native-resolution tiles of a
larger image; ``native``, exactly the model's size; ``resize``, the centre square resized) and the spread of its
tiles (``tiles``, ``tiles_agreeing``: tiles that decide the image's label on their own, ``tile_top_min`` and
``tile_top_max``: the lowest and highest of the tiles' top probability; :mod:`causalprint.scan.tile_decision`),
``ok``, ``error_kind``, ``error``, ``retryable``. Rows that could not be read or
decoded have ``ok=false``, the reason, and nulls in the decision columns; ``retryable`` marks a read that failed for
a transient reason (``scan.on_transient: row``): the next run reads it again and its new row replaces this one.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from causalprint.data.parts import list_parts, read_parts, write_rows_part
from causalprint.scan.errors import ScanError
from causalprint.storage import Storage
from causalprint.storage.faults import retry_transient
from causalprint.storage.lease import require_holder
from causalprint.text import cut, markdown_cell, printable

CLASS_NAMES_KEY = b"causalprint.class_names"
SCAN_NAME = "_scan.json"
SUMMARY_NAME = "_summary.json"
LEASE_NAME = "_lease.json"
MAX_ERROR_EXAMPLES = 20

PartHook = Callable[[Storage, str], None]
# The tile spread's columns (scan.tile_decision) and their types.
TILE_SPREAD = {"tiles": np.int32, "tiles_agreeing": np.int32, "tile_top_min": np.float32, "tile_top_max": np.float32}


def default_output(reports: str, source: str, relative: str) -> str:
    """``<reports>/<slug of the source path>-<8 hex of its URI's hash>``: a new source gets a new report, and a
    report's folder says what it is a scan of."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", relative).strip("-.")[:60] or "root"
    return f"{reports}/{slug}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def report_prefix(output: str, model_slug: str) -> str:
    """The folder of one attributor version's report below the scan's ``output`` (a full URI)."""
    return f"{output}/model={model_slug}"


def new_run_id() -> str:
    """A sortable, unique name for one scan invocation."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def report_schema(class_names: list[str]) -> pa.Schema:
    return pa.schema(
        [
            ("uri", pa.string()),
            ("predicted", pa.string()),
            ("source_family", pa.string()),
            ("architecture", pa.string()),
            # A plain list: pyarrow 25 cannot read back a null row of a fixed-size list from Parquet.
            ("probabilities", pa.list_(pa.float32())),
            ("confidence", pa.float32()),
            ("unknown", pa.bool_()),
            ("model_version", pa.string()),
            ("reference_id", pa.string()),
            ("intake", pa.string()),
            ("tiles", pa.int32()),
            ("tiles_agreeing", pa.int32()),
            ("tile_top_min", pa.float32()),
            ("tile_top_max", pa.float32()),
            ("ok", pa.bool_()),
            ("error_kind", pa.string()),
            ("error", pa.string()),
            ("retryable", pa.bool_()),
        ],
        metadata={CLASS_NAMES_KEY: json.dumps(class_names).encode()},
    )


def report_table(batch: dict[str, np.ndarray], class_names: list[str]) -> pa.Table:
    """The report rows of one batch of :class:`~causalprint.scan.image_attributor.ImageAttributor`
    output; the decision columns are null where ``ok`` is false."""
    ok = np.asarray(batch["ok"], dtype=bool)
    missing = ~ok

    def strings(name: str, mask: np.ndarray | None = None) -> list[str | None]:
        # "" is the pipeline's "no value" (see RESULT_COLUMNS); None and NaN are accepted as the same.
        return [
            None
            if (mask is not None and not mask[i]) or v is None or v == "" or (isinstance(v, float) and v != v)
            else str(v)
            for i, v in enumerate(batch[name])
        ]

    probabilities = [row.tolist() if good else None for row, good in zip(batch["probabilities"], ok)]
    columns = {
        "uri": strings("uri"),
        "predicted": strings("predicted", ok),
        "source_family": strings("source_family", ok),
        "architecture": strings("architecture", ok),
        "probabilities": probabilities,
        "confidence": pa.array(np.asarray(batch["confidence"], dtype=np.float32), mask=missing),
        "unknown": pa.array(np.asarray(batch["unknown"], dtype=bool), mask=missing),
        "model_version": strings("model_version"),
        "reference_id": strings("reference_id"),
        "intake": strings("intake", ok) if "intake" in batch else [None] * len(ok),
        **{
            name: pa.array(np.asarray(batch.get(name, np.zeros(len(ok))), dtype=dtype), mask=missing)
            for name, dtype in TILE_SPREAD.items()
        },
        "ok": ok,
        "error_kind": strings("error_kind"),
        "error": strings("error"),
        "retryable": np.asarray(batch.get("retryable", np.zeros(len(ok), dtype=bool)), dtype=bool),
    }
    return pa.table(columns, schema=report_schema(class_names))


def write_report_part(
    batch: dict[str, np.ndarray],
    storage: Storage,
    prefix: str,
    run: str,
    class_names: list[str],
    on_part: PartHook | None = None,
    lease_holder: str | None = None,
) -> dict[str, np.ndarray]:
    """Ray Data stage: write one batch as a part of run ``run``; pass on only its counts.

    ``on_part(storage, prefix)`` runs before each write (telemetry, fault injection in tests). With
    ``lease_holder``, the report's lease must still be that holder's, or nothing is written
    (:class:`~causalprint.storage.lease.LeaseLostError`): an actor left running by a killed driver never adds
    rows after a rerun has taken the lease and read what is done.
    """
    if on_part is not None:
        on_part(storage, prefix)
    if lease_holder is not None:
        require_holder(storage, f"{prefix}/{LEASE_NAME}", lease_holder)
    table = report_table(batch, class_names)
    # The part's name is a hash of its rows, so a write tried again replaces itself: never a second part.
    written = retry_transient(
        lambda: write_rows_part(storage, f"{prefix}/run={run}", batch["uri"], table), f"a report part in {prefix}"
    )
    return {"written": np.array([written]), "ok": np.array([int(np.sum(batch["ok"]))])}


def pin_scan(storage: Storage, prefix: str, meta: dict[str, Any], fix: str = "set another scan.output") -> None:
    """Record what the report at ``prefix`` is a scan of, or refuse to add rows of another scan to it (``fix``
    says what to do instead)."""
    uri = f"{prefix}/{SCAN_NAME}"
    if not storage.exists(uri):
        storage.write_json(uri, meta)
        return
    have = storage.read_json(uri)
    changed = {k: (have.get(k), v) for k, v in meta.items() if have.get(k) != v}
    if changed:
        shown = "; ".join(
            f"{k}: {cut(str(was), 120)} in the report, {cut(str(now), 120)} now" for k, (was, now) in changed.items()
        )
        raise ScanError(f"the report {prefix} holds another scan ({shown}): {fix}")


def _counts(values: pa.ChunkedArray) -> dict[str, int]:
    """Value -> count, most frequent first (ties by value)."""
    pairs = [(str(v["values"]), int(v["counts"])) for v in values.value_counts().to_pylist()]
    return dict(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))


def summarize(storage: Storage, prefix: str) -> dict[str, Any]:
    """Counts over every row of the report: per predicted source, unknowns, errors (with examples)."""
    if not list_parts(storage, prefix):
        return {
            "images": 0,
            "attributed": 0,
            "unknown": 0,
            "errors": 0,
            "retryable": 0,
            "by_predicted": {},
            "by_architecture": {},
            "by_intake": {},
            "errors_by_kind": {},
            "error_examples": [],
        }
    # Arrow compute, not Python rows: a report holds a row per image of an archive.
    table = read_parts(
        storage,
        prefix,
        columns=["uri", "predicted", "architecture", "unknown", "ok", "error_kind", "error"],
        optional=("retryable", "intake"),
    )
    attributed, failed = table.filter(table["ok"]), table.filter(pc.invert(table["ok"]))
    retryable = (
        int(pc.sum(pc.fill_null(failed["retryable"], False)).as_py() or 0) if "retryable" in failed.column_names else 0
    )
    examples = failed.sort_by("uri").slice(0, MAX_ERROR_EXAMPLES).select(["uri", "error_kind", "error"])
    return {
        "images": table.num_rows,
        "attributed": attributed.num_rows,
        "unknown": int(pc.sum(attributed["unknown"]).as_py() or 0),
        "errors": failed.num_rows,
        "retryable": retryable,
        "by_predicted": _counts(attributed["predicted"]),
        "by_architecture": _counts(attributed["architecture"].drop_null()),
        "by_intake": _counts(attributed["intake"].drop_null()) if "intake" in attributed.column_names else {},
        "errors_by_kind": dict(sorted(_counts(failed["error_kind"]).items())),
        "error_examples": examples.to_pylist(),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The printed summary of a scan: counts per predicted source, unknowns, errors, throughput."""
    run = summary["run"]
    lines = [
        f"scan of {printable(summary['source'])} with {summary['model_version']} (reference {summary['reference_id']})",
        f"report: {printable(summary['report'])}",
        f"{summary['images']} images: {summary['attributed']} attributed ({summary['unknown']} unknown), "
        f"{summary['errors']} errors",
    ]
    if summary.get("intake_size"):
        lines.append(describe_intake(summary["intake_size"], summary.get("intake", {}), summary.get("by_intake", {})))
    lines += [
        "",
        "| predicted source | images |",
        "|---|---:|",
        *[f"| {markdown_cell(label)} | {count} |" for label, count in summary["by_predicted"].items()],
    ]
    if summary.get("by_architecture"):
        lines += [
            "",
            "| architecture | images |",
            "|---|---:|",
            *[f"| {markdown_cell(arch)} | {count} |" for arch, count in summary["by_architecture"].items()],
        ]
    if summary["errors"]:
        kinds = ", ".join(f"{kind} {count}" for kind, count in summary["errors_by_kind"].items())
        lines += ["", f"errors by kind: {kinds}"]
        if summary.get("retryable"):
            lines.append(
                f"{summary['retryable']} of them retryable (a transient read error): the next run of this "
                "command reads them again"
            )
        lines += [
            f"  {printable(e['uri'])}: {e['error_kind']}: {printable(e['error'])}" for e in summary["error_examples"]
        ]
        if summary["errors"] > len(summary["error_examples"]):
            lines.append(f"  ... and {summary['errors'] - len(summary['error_examples'])} more in the report")
    lines += [
        "",
        f"this run ({run['id']}): {run['listed']} files listed, {run['skipped']} already in the report, "
        f"{run['written']} scanned in {run['seconds']:.1f} s = {run['images_per_second']:.1f} images/s",
    ]
    if run.get("again"):
        lines.append(f"  {run['again']} of them read again: rows marked retryable, or error rows (--retry-errors)")
    if run.get("not_listed"):
        lines.append(
            "  not listed, on purpose: "
            + ", ".join(f"{count} {printable(reason)}" for reason, count in run["not_listed"].items())
        )
    if run["written"]:
        lines.append(
            f"  ({run['first_part_seconds']:.1f} s to the first part, actor start-up included; then "
            f"{run['steady_images_per_second']:.1f} images/s)"
        )
    return "\n".join(lines)


def describe_intake(size: int, intake: dict[str, Any], by_intake: dict[str, int]) -> str:
    """How the scan's images reached the model's ``size`` (the summary's ``intake`` and ``by_intake``)."""
    counts = ", ".join(f"{n} {kind}" for kind, n in by_intake.items())
    if intake.get("mode", "resize") == "tiles":
        text = (
            f"an image larger than {size}x{size} px was read as up to {intake['tiles']} tiles of that size at "
            "native resolution, decided together; a smaller one was centre-cropped and resized (Lanczos)"
        )
    else:
        text = f"each image was centre-cropped to its largest square and resized to {size}x{size} px (Lanczos)"
    return f"{text} (docs/image-intake.md)" + (f"; images read: {counts}" if counts else "")


def format_throughput(summary: dict[str, Any], batch_size: int, max_actors: int) -> str:
    """The results-document table of one scan run."""
    run = summary["run"]
    return "\n".join(
        [
            "| images scanned | errors | seconds | images/s | to first part (s) | images/s after it | batch size | "
            "actors (max) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {run['written']} | {summary['errors']} | {run['seconds']:.1f} | {run['images_per_second']:.1f} | "
            f"{run['first_part_seconds']:.1f} | {run['steady_images_per_second']:.1f} | {batch_size} | "
            f"{max_actors} |",
            "",
            f"Model `{summary['model_version']}`. Wall-clock time of the Ray Data pipeline (read, decode, residual, "
            "features, attributor, write), Ray already started; the first part waits for the actors to load their "
            "models.",
        ]
    )
