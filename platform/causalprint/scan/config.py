"""Typed configuration of the provenance scan."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from causalprint.config import StrictModel
from causalprint.data.collection import DEFAULT_IGNORE
from causalprint.extraction.config import ActorConfig
from causalprint.imaging.tiles import AttributionIntakeConfig
from causalprint.runtime.job_config import JobConfig
from causalprint.storage.listing import LIST_PAGE_SIZE
from causalprint.storage.sources import SourceConfig, check_sources
from causalprint.tracking.versions import MODEL_NAME

DEFAULT_MODEL = f"models:/{MODEL_NAME}@champion"


class ScanOptions(StrictModel):
    """How to scan: which attributor, against which reference model, where the report goes (a preset holds these)."""

    model: str = Field(
        default=DEFAULT_MODEL,
        description="models:/<name>@<alias>, models:/<name>/<version> or runs:/<run id>/attributor",
    )
    reference: str = Field(description="storage folder of the reference model the attributor's features came from")
    output: str | None = Field(
        default=None,
        description="report prefix in storage; each model version has its own "
        "model=<...>/ folder (default: <reports>/<source slug>-<hash>, one report per source)",
    )
    reports: str = Field(
        default="scans", min_length=1, description="folder of the per-source reports when output is not set"
    )
    ignore: tuple[str, ...] = Field(
        default=DEFAULT_IGNORE,
        description="fnmatch patterns of file names (or paths below the source) to skip; the summary counts them",
    )
    decision: Literal["logits", "prototypes"] = Field(
        default="prototypes",
        description="class scores of the open-set decision: the distance to class "
        "prototypes (the only path that knows enrolled sources) or the classifier's logits (which know the trained "
        "classes only; on the bench they score about a point higher in open-set AUROC, docs/results.md)",
    )
    batch_size: int = Field(default=64, ge=1, le=4096, strict=True)
    # float32, not bf16 autocast, on CUDA too: on an H200, bf16 changed 2 of 256 decisions of the champion and was
    # no faster over the whole path (docs/results.md, "The attribution path on CPU and GPU").
    precision: Literal["auto", "float32", "float16", "bfloat16"] = "float32"
    actors: ActorConfig = ActorConfig()
    on_transient: Literal["fail", "row"] = Field(
        default="fail",
        description="a read that still fails for a transient reason (throttling, a server error, "
        "a timeout, credentials) after read_attempts: fail the scan (the report keeps what was written; rerun to go "
        "on), or write an error row marked retryable, which the next run reads again",
    )
    read_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        strict=True,
        description="reads of a file in all, for transient errors (each may itself be "
        "several S3 requests: storage.max_attempts)",
    )
    read_backoff_s: float = Field(default=0.5, ge=0, le=60, description="first pause between reads; doubles")
    lease_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="one writer per report: the lease runs out "
        "this long after its last renewal (every lease_s / 3), so a killed scan's report is free "
        "again after it",
    )
    list_page_size: int = Field(
        default=LIST_PAGE_SIZE,
        ge=1,
        le=LIST_PAGE_SIZE,
        strict=True,
        description="keys per list request of an S3 source (S3 answers at most 1,000)",
    )
    chunk_size: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        strict=True,
        description="files not yet in the report that the driver gathers from the listing before "
        "it runs them; the listing goes on after each chunk, so the driver never holds more than this plus a "
        "page of it (each chunk starts the model actors again)",
    )


class ScanConfig(ScanOptions):
    """A scan of one folder or bucket prefix."""

    source: str = Field(
        min_length=1,
        description="folder or bucket prefix of images: inside storage, or a full "
        "URI inside one of the allowed `sources`",
    )
    retry_errors: bool = Field(
        default=False,
        description="read the report's error rows again (every ok=false "
        "row of a file still listed), not only those marked retryable",
    )


class ScanJobConfig(JobConfig):
    intake: AttributionIntakeConfig | None = Field(
        default=None,
        description="default: at the reference model's size, a larger image read as native-resolution tiles "
        "(mode: tiles, tiles: 4); mode: resize reads it resized as before",
    )
    scan: ScanConfig
    sources: tuple[SourceConfig, ...] = Field(
        default=(),
        description="read-only locations beside the storage root that a scan may read: local folders "
        "or s3://bucket/prefix, each with its own endpoint and credentials; nothing outside them and the root is "
        "read",
    )

    @field_validator("sources")
    @classmethod
    def _check_sources(cls, value: tuple[SourceConfig, ...]) -> tuple[SourceConfig, ...]:
        check_sources(value)
        return value
