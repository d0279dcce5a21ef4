"""Typed configuration of the extraction job."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from causalprint.config import StrictModel
from causalprint.imaging.intake import IntakeConfig
from causalprint.perturbations import PerturbationSpec
from causalprint.runtime.job_config import JobConfig


class SpaceSpec(StrictModel):
    """A feature space by registry name; ``weights`` is a model folder in storage (for ssl and hf)."""

    name: str
    weights: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class ActorConfig(StrictModel):
    """Actor pool sizes. CPUs are fractional so that read and decode tasks are never starved."""

    min_actors: int = Field(default=1, ge=1)
    max_actors: int = Field(default=2, ge=1)
    num_cpus: float = Field(default=0.5, gt=0)
    gpus_per_actor: float | None = Field(default=None, ge=0, description="None: 0.5 where GPUs exist, else 0")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom Ray resources each actor needs: actors go only to nodes that offer them (a node pool "
        "started with `ray start --resources`), at most as many per node as the node has",
    )

    @model_validator(mode="after")
    def _sizes(self) -> ActorConfig:
        if self.min_actors > self.max_actors:
            raise ValueError(f"min_actors={self.min_actors} is more than max_actors={self.max_actors}")
        return self


def _default_modes() -> dict[str, dict[str, Any]]:
    return {"one_step": {}, "latent": {}, "image": {}}


class ExtractConfig(StrictModel):
    """What to extract: from which images, against which reference model, in which modes and spaces."""

    input: str = Field(description="a zoo manifest (.parquet) or a folder/prefix of images, inside storage")
    output: str = Field(description="prefix that receives the Parquet parts")
    reference: str = Field(description="storage folder of the reference model (diffusers format)")
    modes: dict[str, dict[str, Any]] = Field(default_factory=_default_modes)
    spaces: list[SpaceSpec] = Field(default_factory=lambda: [SpaceSpec(name=n) for n in ("rgb", "dct", "fourier")])
    splits: list[str] | None = Field(default=None, description="manifest splits to keep (None: all)")
    sources: list[str] | None = Field(default=None, description="manifest sources to keep (None: all)")
    per_source_limit: int | None = Field(default=None, ge=1, description="deterministic subset per source")
    perturb: list[PerturbationSpec] = Field(
        default_factory=list,
        description="applied after decoding, before the residual: each image gets one of "
        "these, chosen by a hash of its URI (one entry: every image gets it). Robustness tests and augmentation",
    )
    batch_size: int = Field(default=64, ge=1, le=4096, strict=True)  # strict: `true` is not 1
    precision: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    actors: ActorConfig = Field(
        default=ActorConfig(min_actors=2, max_actors=4, num_cpus=0.75),
        description="the extraction actors: each computes residuals and features and writes its parts",
    )


class ExtractJobConfig(JobConfig):
    intake: IntakeConfig | None = Field(default=None, description="default: at the reference model's size")
    extract: ExtractConfig
