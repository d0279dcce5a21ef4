"""``causalprint bench device``: the attribution path on each device (CPU, CUDA) in one process, from a device
kit. The benchmark is :mod:`causalprint.benchmarks.device_throughput`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalprint.benchmarks.device_throughput import BenchDeviceJobConfig, format_device_bench, run_device_bench
from causalprint.jobs.spec import Section

CONFIG = BenchDeviceJobConfig


def run(config: BenchDeviceJobConfig) -> dict[str, Any]:
    return run_device_bench(config)


def describe(result: dict[str, Any]) -> str:
    return format_device_bench(result)


def section(config: BenchDeviceJobConfig, result: dict[str, Any], preset: str, docs_dir: Path) -> Section:
    return Section(f"device-{preset}", "The attribution path on CPU and GPU", format_device_bench(result))
