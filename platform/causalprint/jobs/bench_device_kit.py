"""``causalprint bench device-kit``: copy an attributor, its reference model and held-out images into one folder
that ``causalprint bench device`` reads on a GPU machine."""

from __future__ import annotations

import json
from typing import Any

from causalprint.benchmarks.device_throughput import BenchDeviceJobConfig, prepare_kit

CONFIG = BenchDeviceJobConfig


def run(config: BenchDeviceJobConfig) -> dict[str, Any]:
    return prepare_kit(config)


def describe(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)
