"""``causalprint extract``: residuals and feature vectors of a manifest or a prefix, as resumable Parquet parts.
The engine is :func:`causalprint.extraction.pipeline.run_extract`, which evaluation and benchmarks call too."""

from __future__ import annotations

import json

from causalprint.extraction.config import ExtractJobConfig
from causalprint.extraction.pipeline import ExtractSummary, run_extract

CONFIG = ExtractJobConfig


def run(config: ExtractJobConfig) -> ExtractSummary:
    return run_extract(config)


def describe(summary: ExtractSummary) -> str:
    return json.dumps(summary, indent=2)
