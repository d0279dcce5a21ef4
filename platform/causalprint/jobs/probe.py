"""``causalprint probe``: separability of every residual mode x feature space (a linear probe).
The engine is :mod:`causalprint.evaluation.probe`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalprint.evaluation.probe import ProbeJobConfig, format_probe, run_probe
from causalprint.jobs.spec import Section

CONFIG = ProbeJobConfig


def run(config: ProbeJobConfig) -> list[dict[str, Any]]:
    return run_probe(config)


def describe(rows: list[dict[str, Any]]) -> str:
    return format_probe(rows)


def section(config: ProbeJobConfig, rows: list[dict[str, Any]], preset: str, docs_dir: Path) -> Section:
    return Section(f"separability-{preset}", "Separability of residual representations", format_probe(rows))
