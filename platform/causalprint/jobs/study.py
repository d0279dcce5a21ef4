"""``causalprint study``: train variants that differ in their architecture-only instances or columns and score
them on shift copies. The engine is :mod:`causalprint.attribution.source_study`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from causalprint.attribution.source_study import (
    StudyJobConfig,
    VariantScore,
    format_study,
    run_study,
    study_summary,
)
from causalprint.jobs.spec import Section

CONFIG = StudyJobConfig


@dataclass(frozen=True)
class StudyResult:
    config: StudyJobConfig
    scores: list[VariantScore]


def run(config: StudyJobConfig) -> StudyResult:
    return StudyResult(config, run_study(config))


def describe(result: StudyResult) -> str:
    return json.dumps(study_summary(result.config.study, result.scores), indent=2)


def section(config: StudyJobConfig, result: StudyResult, preset: str, docs_dir: Path) -> Section:
    return Section(
        f"study-{config.study.name}",
        f"Architecture-only instances: study `{config.study.name}`",
        format_study(config.study, result.scores),
    )
