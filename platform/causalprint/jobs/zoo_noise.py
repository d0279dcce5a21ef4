"""``causalprint zoo noise``: per-layer noise strengths of the zoo's StyleGANs, read from their stored weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from causalprint.jobs.spec import Section
from causalprint.jobs.zoo_build import ZooJobConfig
from causalprint.storage import Storage
from causalprint.zoo.noise_report import format_noise_table, noise_strengths

CONFIG = ZooJobConfig


@dataclass(frozen=True)
class NoiseResult:
    rows: list[dict[str, Any]]
    image_size: int


def run(config: ZooJobConfig) -> NoiseResult:
    return NoiseResult(noise_strengths(Storage(config.storage), config.zoo), config.zoo.image_size)


def describe(result: NoiseResult) -> str:
    return format_noise_table(result.rows, result.image_size)


def section(config: ZooJobConfig, result: NoiseResult, preset: str, docs_dir: Path) -> Section:
    return Section(
        f"zoo-noise-{config.zoo.name}", f"StyleGAN noise strengths in zoo `{config.zoo.name}`", describe(result)
    )
