"""``causalprint scan``: attribute every image of a folder or bucket prefix into a resumable Parquet report.
The engine is :func:`causalprint.scan.job.run_scan`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalprint.jobs.spec import Section
from causalprint.scan.config import ScanJobConfig
from causalprint.scan.job import run_scan
from causalprint.scan.report import format_summary, format_throughput

CONFIG = ScanJobConfig


def run(config: ScanJobConfig) -> dict[str, Any]:
    return run_scan(config)


def describe(summary: dict[str, Any]) -> str:
    return format_summary(summary)


def section(config: ScanJobConfig, summary: dict[str, Any], preset: str, docs_dir: Path) -> Section:
    return Section(
        f"scan-{preset}",
        "Provenance scan throughput",
        format_throughput(summary, config.scan.batch_size, config.scan.actors.max_actors),
    )


def epilogue(config: ScanJobConfig, summary: dict[str, Any], options: dict[str, Any]) -> str:
    """``--show N``: the report's first rows, last, so that they end the output."""
    if not options.get("show"):
        return ""
    from causalprint.scan.rows import format_rows, report_rows
    from causalprint.storage import Storage

    rows = report_rows(Storage(config.storage), summary["report"], options["show"])
    return (
        f"\nfirst {options['show']} rows (causalprint report {summary['report']} --all for every row):\n"
        + format_rows(rows)
    )
