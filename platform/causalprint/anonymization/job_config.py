"""Typed configuration of the batch anonymization job."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from causalprint.anonymization.config import AnonymizeOptions
from causalprint.config import StrictModel
from causalprint.extraction.config import ActorConfig
from causalprint.imaging.intake import IntakeConfig
from causalprint.runtime.job_config import JobConfig
from causalprint.scan.config import DEFAULT_MODEL


class AnonymizeJobOptions(StrictModel):
    """Which images, into which prefix, against which attributor (a preset holds model and reference)."""

    source: str = Field(min_length=1, description="folder or prefix of images, inside storage")
    output: str = Field(min_length=1, description="prefix for the anonymized PNGs (images/) and the report")
    model: str = Field(default=DEFAULT_MODEL, description="models:/<name>@<alias> or models:/<name>/<version>")
    reference: str = Field(description="storage folder of the reference model the attributor's features came from")
    target: Literal["real", "away"] = "real"
    method: AnonymizeOptions = AnonymizeOptions()
    ignore: tuple[str, ...] = Field(default=(), description="glob patterns of entries skipped on purpose")
    batch_size: int = Field(default=8, ge=1, le=1024)
    actors: ActorConfig = ActorConfig(max_actors=2, num_cpus=1.0)


class AnonymizeJobConfig(JobConfig):
    intake: IntakeConfig | None = Field(default=None, description="default: at the reference model's size")
    anonymize: AnonymizeJobOptions
