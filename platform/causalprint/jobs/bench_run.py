"""``causalprint bench run``: a benchmark as one command. Its preset lists stages, each another job of the catalog
with one of that job's presets; they run in order on the chain's storage, Ray and MLflow.

It resumes where it stopped: a stage that finished leaves a record in storage (``bench/<name>/stages/``) with the
hash of the config it ran, and a rerun skips every stage whose record matches its config. Inside a stage, the
jobs resume themselves (the zoo per source, extraction per Parquet part). ``--results`` writes the section of
every stage that writes one, each recording the chain's preset and the stage's, and a section with the time of
each stage, summed over every sitting the chain took.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, TypedDict

from pydantic import Field, model_validator

from causalprint.config import ConfigError, StrictModel, cli_overrides, validate_layers
from causalprint.jobs.catalog import JOBS
from causalprint.jobs.spec import JobSpec, Section, find
from causalprint.presets import PRESET_ROOT, preset_hash
from causalprint.runtime.job_config import JobConfig
from causalprint.storage import Storage

log = logging.getLogger(__name__)


class Stage(StrictModel):
    """One stage: a job by its command words, one of its presets, and keys set on top of that preset."""

    job: str = Field(description='command words of a job in the catalog, e.g. "zoo build"')
    preset: str
    set: dict[str, Any] = Field(default_factory=dict, description='dotted keys over the preset ("zoo.seed": 3)')
    label: str | None = Field(default=None, description="its name in the log and the time table (default: job/preset)")

    @property
    def name(self) -> str:
        return self.label or f"{self.job}/{self.preset}"


class BenchOptions(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="names the stage records and the time section")
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> BenchOptions:
        names = [s.name for s in self.stages]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"stages {twice} appear twice: give each a label")
        return self


class BenchRunConfig(JobConfig):
    bench: BenchOptions


CONFIG = BenchRunConfig


class StageReport(TypedDict):
    name: str
    job: str
    preset: str
    config_hash: str
    seconds: float  # of the sitting that ran it
    resumed: bool  # True: skipped, its record matched
    description: str
    section: dict[str, Any] | None  # {"key", "title", "body"}, for --results


class BenchReport(TypedDict):
    name: str
    stages: list[StageReport]
    seconds: float  # this sitting's wall time
    sittings: int  # how many runs it took, this one included


def _spec(stage: Stage) -> JobSpec:
    return find(stage.job, JOBS)


def stage_config(config: BenchRunConfig, stage: Stage) -> JobConfig:
    """The stage's job config: its preset, the stage's keys, then the chain's storage and Ray, and the chain's
    MLflow server (the stage keeps its own experiment)."""
    spec = _spec(stage)
    if spec.preset_kind is None:
        raise ConfigError(f"stage {stage.name}: `causalprint {stage.job}` has no presets")
    preset = (f"preset {spec.preset_kind}/{stage.preset}", spec.preset(stage.preset))
    layers: list[tuple[str, dict[str, Any]]] = [preset]
    if stage.set:
        layers.append((f"stage {stage.name}", cli_overrides(f"{k}={json.dumps(v)}" for k, v in stage.set.items())))
    job = validate_layers(spec.config_class(), layers)
    mlflow = job.mlflow.model_copy(
        update={"tracking_uri": config.mlflow.tracking_uri, "artifact_location": config.mlflow.artifact_location}
    )
    return job.model_copy(update={"storage": config.storage, "ray": config.ray, "mlflow": mlflow})


def config_hash(job: JobConfig) -> str:
    return hashlib.sha256(job.model_dump_json().encode()).hexdigest()[:16]


def _record_uri(storage: Storage, name: str, index: int, stage: Stage) -> str:
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in stage.name)
    return storage.uri("bench", name, "stages", f"{index:02d}-{slug}.json")


def _section(spec_module: Any, job: JobConfig, result: Any, preset: str) -> dict[str, Any] | None:
    if not hasattr(spec_module, "section"):
        return None
    section = spec_module.section(job, result, preset, Path("docs").resolve())
    return None if section is None else {"key": section.key, "title": section.title, "body": section.body}


def run(config: BenchRunConfig) -> BenchReport:
    """Run every stage not yet recorded as done with the same config; returns each stage's report."""
    storage = Storage(config.storage)
    jobs = [stage_config(config, stage) for stage in config.bench.stages]  # every stage validated before any runs
    sittings_uri = storage.uri("bench", config.bench.name, "sittings.json")
    sittings = (storage.read_json(sittings_uri) if storage.exists(sittings_uri) else 0) + 1
    storage.write_json(sittings_uri, sittings)
    start = time.perf_counter()
    reports: list[StageReport] = []
    for index, (stage, job) in enumerate(zip(config.bench.stages, jobs, strict=True)):
        record_uri = _record_uri(storage, config.bench.name, index, stage)
        digest = config_hash(job)
        record = storage.read_json(record_uri) if storage.exists(record_uri) else None
        if record is not None and record.get("config_hash") == digest:
            log.info("stage %d/%d %s: done in an earlier sitting, skipped", index + 1, len(jobs), stage.name)
            done: StageReport = record  # the record is a StageReport written by an earlier sitting
            reports.append({**done, "resumed": True})
            continue
        log.info("stage %d/%d %s: running", index + 1, len(jobs), stage.name)
        print(f"== stage {index + 1}/{len(jobs)}: {stage.name}", flush=True)
        module = _spec(stage).load()
        began = time.perf_counter()
        result = module.run(job)
        report: StageReport = {
            "name": stage.name,
            "job": stage.job,
            "preset": stage.preset,
            "config_hash": digest,
            "seconds": round(time.perf_counter() - began, 1),
            "resumed": False,
            "description": module.describe(result),
            "section": _section(module, job, result, stage.preset),
        }
        if hasattr(module, "exit_code") and module.exit_code(result) != 0:
            # Not recorded as done: a rerun runs it again, and the stages after it would read a failed result
            # (after a training whose gate refused its model, an older champion or none).
            raise RuntimeError(f"stage {stage.name} failed:\n{report['description']}")
        storage.write_json(record_uri, report)  # atomic: the record is the stage's commit
        print(report["description"], flush=True)
        reports.append(report)
    return {
        "name": config.bench.name,
        "stages": reports,
        "seconds": round(time.perf_counter() - start, 1),
        "sittings": sittings,
    }


def format_times(report: BenchReport) -> str:
    lines = ["| stage | seconds | run in |", "|---|---:|---|"]
    for stage in report["stages"]:
        when = "an earlier sitting" if stage["resumed"] else "this sitting"
        lines.append(f"| {stage['name']} | {stage['seconds']:.0f} | {when} |")
    total = sum(stage["seconds"] for stage in report["stages"])
    lines.append(f"| **every stage** | **{total:.0f}** ({total / 60:.1f} min) | {report['sittings']} sitting(s) |")
    return "\n".join(lines)


def describe(report: BenchReport) -> str:
    return f"benchmark {report['name']}: every stage done\n" + format_times(report)


def section(config: BenchRunConfig, report: BenchReport, preset: str, docs_dir: Path) -> list[Section]:
    """The time table, then every stage's own section, each recording the chain's preset and its own."""

    def hashes(*pairs: tuple[str, str]) -> dict[str, str]:
        return {f"{kind}/{name}": preset_hash(PRESET_ROOT / kind / f"{name}.yaml") for kind, name in pairs}

    chain = ("bench_run", preset)
    out = [
        Section(
            f"bench-{report['name']}",
            f"The benchmark `causalprint bench run --preset {preset}`: time per stage",
            "Wall-clock seconds of each stage on this machine; a stage run in an earlier sitting (the chain "
            "resumed) keeps the time it took then.\n\n" + format_times(report),
            presets=hashes(chain, *((_spec(s).preset_kind or "", s.preset) for s in config.bench.stages)),
        )
    ]
    for stage, done in zip(config.bench.stages, report["stages"], strict=True):
        if done["section"] is not None:
            kind = _spec(stage).preset_kind or ""
            out.append(Section(**done["section"], presets=hashes(chain, (kind, stage.preset))))
    return out
