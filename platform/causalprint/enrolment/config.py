"""Typed configuration of an enrolment."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from causalprint.config import StrictModel
from causalprint.imaging.tiles import AttributionIntakeConfig
from causalprint.runtime.job_config import JobConfig
from causalprint.scan.config import DEFAULT_MODEL
from causalprint.tracking.versions import CANDIDATE, CHAMPION


class EnrolOptions(StrictModel):
    """Which source joins which registered attributor, from which images (a preset holds model and reference)."""

    source: str = Field(min_length=1, description="name of the new source, e.g. my-gan-v2")
    family: str = Field(
        min_length=1,
        description="its family (gan, diffusion, vae, ...): what an image of it "
        "falls back to when the exact source is uncertain",
    )
    images: str = Field(min_length=1, description="folder or bucket prefix of its images, inside storage")
    model: str = Field(
        default=DEFAULT_MODEL,
        description="models:/<name>@<alias> or models:/<name>/<version>; the new version is a version of the same name",
    )
    reference: str = Field(description="storage folder of the reference model the attributor's features came from")
    alias: str = Field(default=CANDIDATE, min_length=1, description="alias of the new version")
    min_images: int = Field(default=5, ge=1, description="fewer readable images are refused")
    max_images: int = Field(
        default=2000,
        ge=1,
        description="more images are refused: enrolment holds their codes in memory, and a few suffice",
    )
    batch_size: int = Field(default=64, ge=1, le=4096, strict=True)  # strict: `true` is not 1

    @field_validator("alias")
    @classmethod
    def _not_champion(cls, alias: str) -> str:
        if alias == CHAMPION:
            raise ValueError(f"only the evaluation gate moves {CHAMPION!r}; an enrolled version gets another alias")
        return alias

    @model_validator(mode="after")
    def _bounds(self) -> EnrolOptions:
        if self.min_images > self.max_images:
            raise ValueError(f"min_images {self.min_images} exceeds max_images {self.max_images}")
        return self


class EnrolJobConfig(JobConfig):
    intake: AttributionIntakeConfig | None = Field(
        default=None,
        description="default: at the reference model's size, a larger image read as native-resolution tiles "
        "(one code per image: the mean of its tiles'); mode: resize reads it resized as before",
    )
    enrol: EnrolOptions
