"""``causalprint anonymize``: remove the named source's fingerprint from every image of a folder or prefix, as
PNGs and a per-image report, resumable. The engine is :func:`causalprint.anonymization.job.run_anonymize`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from causalprint.anonymization.job import format_anonymize, format_anonymize_table, run_anonymize
from causalprint.anonymization.job_config import AnonymizeJobConfig
from causalprint.jobs.spec import Section

CONFIG = AnonymizeJobConfig


def run(config: AnonymizeJobConfig) -> dict[str, Any]:
    return run_anonymize(config)


def describe(summary: dict[str, Any]) -> str:
    return format_anonymize(summary)


def section(config: AnonymizeJobConfig, summary: dict[str, Any], preset: str, docs_dir: Path) -> Section:
    options = config.anonymize
    slug = re.sub(r"[^a-z0-9]+", "-", options.source.lower()).strip("-")
    return Section(
        f"anonymize-{preset}-{options.target}-{slug}",
        f"Anonymization of `{summary['source']}` (white-box, target {options.target})",
        format_anonymize_table(summary),
    )
