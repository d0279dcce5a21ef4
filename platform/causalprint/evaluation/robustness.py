"""The perturbed test sets: one extraction output per condition, written once and reused (resumable)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from causalprint.config import StrictModel
from causalprint.evaluation.conditions import CLEAN, Condition, default_conditions
from causalprint.extraction.config import ExtractConfig, ExtractJobConfig, SpaceSpec
from causalprint.runtime.ray_local import RayConfig
from causalprint.storage import StorageConfig

if TYPE_CHECKING:  # the pipeline pulls in Ray Data: imported where the extraction runs
    from causalprint.extraction.pipeline import ExtractSummary

log = logging.getLogger(__name__)


def _spaces(*names: str) -> list[SpaceSpec]:
    return [SpaceSpec(name=n) for n in names]


class RobustnessConfig(StrictModel):
    """Where the perturbed copies of the test split go, and what is extracted from them.

    ``<output>/<condition>`` holds the cheap modes for ``per_source_limit`` images per source;
    ``<output>/<condition>-dire`` the costly ``dire_modes`` for ``dire_per_source_limit`` images per source.
    """

    output: str = "features/bench/robust"
    per_source_limit: int | None = Field(default=500, ge=1)
    modes: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"one_step": {"t": 200}, "latent": {}, "image": {}}
    )
    spaces: list[SpaceSpec] = Field(default_factory=lambda: _spaces("rgb", "dct", "fourier", "sl"))
    dire_per_source_limit: int | None = Field(default=50, ge=1)
    dire_modes: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"dire": {"steps": 20}})
    dire_spaces: list[SpaceSpec] = Field(default_factory=lambda: _spaces("rgb"))
    conditions: list[Condition] = Field(default_factory=default_conditions)
    batch_size: int = Field(default=128, ge=1)

    @model_validator(mode="after")
    def _one_clean_condition(self) -> RobustnessConfig:
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names repeat: {names}")
        clean = [c.name for c in self.conditions if c.clean]
        if clean != [CLEAN]:
            raise ValueError(f"conditions need exactly one without perturbations, named {CLEAN!r}; got {clean}")
        return self


def condition_output(robust: RobustnessConfig, condition: Condition, dire: bool = False) -> str:
    return f"{robust.output}/{condition.name}{'-dire' if dire else ''}"


def condition_extract_jobs(
    robust: RobustnessConfig,
    *,
    manifest: str,
    reference: str,
    sources: list[str],
    split: str,
    storage: StorageConfig,
    ray: RayConfig,
    dire: bool,
) -> list[tuple[Condition, ExtractJobConfig]]:
    """One extraction job per perturbed condition (the clean condition reads the main outputs instead)."""
    jobs = []
    for condition in robust.conditions:
        if condition.clean:
            continue
        extract = ExtractConfig(
            input=manifest,
            output=condition_output(robust, condition, dire),
            reference=reference,
            modes=robust.dire_modes if dire else robust.modes,
            spaces=robust.dire_spaces if dire else robust.spaces,
            splits=[split],
            sources=sources,
            perturb=condition.perturb,
            batch_size=robust.batch_size,
            per_source_limit=robust.dire_per_source_limit if dire else robust.per_source_limit,
        )
        jobs.append((condition, ExtractJobConfig(storage=storage, ray=ray, extract=extract)))
    return jobs


def extract_conditions(jobs: list[tuple[Condition, ExtractJobConfig]]) -> dict[str, ExtractSummary]:
    """Run (or finish) every condition's extraction; a finished one costs a listing."""
    from causalprint.extraction.pipeline import run_extract

    summaries: dict[str, ExtractSummary] = {}
    for i, (condition, job) in enumerate(jobs, 1):
        log.info("robustness extraction %d/%d: %s -> %s", i, len(jobs), condition.name, job.extract.output)
        summaries[job.extract.output] = run_extract(job)
    return summaries
