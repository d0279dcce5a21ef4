"""``causalprint bench extract``: throughput of the residual modes and of the Ray extraction pipeline.
The benchmark is :mod:`causalprint.benchmarks.extract_throughput`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalprint.benchmarks.extract_throughput import BenchExtractJobConfig, format_throughput, run_throughput
from causalprint.jobs.spec import Section

CONFIG = BenchExtractJobConfig


def run(config: BenchExtractJobConfig) -> dict[str, Any]:
    return run_throughput(config)


def describe(result: dict[str, Any]) -> str:
    return format_throughput(result)


def section(config: BenchExtractJobConfig, result: dict[str, Any], preset: str, docs_dir: Path) -> Section:
    return Section(f"throughput-{preset}", "Residual and feature engine throughput", format_throughput(result))
