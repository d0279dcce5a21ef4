"""``causalprint bench serve``: the Serve application under load on 127.0.0.1: latency, batched against
unbatched, replicas over a ramp and a champion change. The benchmark is
:mod:`causalprint.benchmarks.serve_load`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalprint.benchmarks.serve_load import BenchServeJobConfig, format_serve_bench, plot_ramp, run_serve_bench
from causalprint.jobs.spec import Section, doc_link

CONFIG = BenchServeJobConfig


def run(config: BenchServeJobConfig) -> dict[str, Any]:
    return run_serve_bench(config)


def describe(result: dict[str, Any]) -> str:
    return format_serve_bench(result)


def section(config: BenchServeJobConfig, result: dict[str, Any], preset: str, docs_dir: Path) -> Section:
    plot = plot_ramp(result["ramp"], str(docs_dir / "images" / f"serve-ramp-{preset}.png"))
    return Section(
        f"serve-{preset}",
        "Serving: latency, batching, autoscaling, a champion change",
        format_serve_bench({**result, "plot_link": doc_link(docs_dir, plot)}),
    )
