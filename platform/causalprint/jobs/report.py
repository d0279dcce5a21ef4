"""``causalprint report``: print or export the rows of a scan report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from causalprint.scan.rows import ReportJobConfig, report_rows
from causalprint.storage import Storage

CONFIG = ReportJobConfig


@dataclass(frozen=True)
class Report:
    storage: Storage
    prefix: str


def run(config: ReportJobConfig) -> Report:
    """The report to read; its rows are read by :func:`epilogue`, which knows how many to show."""
    storage = Storage(config.storage)
    return Report(storage, config.prefix)


def describe(report: Report) -> str:
    return ""


def epilogue(config: ReportJobConfig, report: Report, options: dict[str, Any]) -> str:
    from causalprint.scan.rows import format_rows

    limit = None if options.get("all") else options.get("show", 20)
    return format_rows(report_rows(report.storage, report.prefix, limit), options.get("format", "table"))
