"""The typed config of one training run: the decoupler's options, optimisation, scaling, and the data."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from causalprint.attribution.dataset import AttributionData, DataConfig
from causalprint.attribution.generated import GeneratedHeadOptions
from causalprint.attribution.model import DecouplerConfig, DecouplerOptions
from causalprint.attribution.schedule import Schedule
from causalprint.config import StrictModel
from causalprint.runtime.job_config import JobConfig

__all__ = ["DecouplerOptions", "ScalingOptions", "TrainJobConfig", "TrainOptions"]


class TrainOptions(StrictModel):
    """Optimisation and calibration."""

    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=128, ge=2, description="global: each of W workers takes batch_size // W")
    lr: float = Field(default=1e-3, gt=0)
    schedule: Schedule = Field(
        default="cosine",
        description="learning rate per epoch: constant, or a cosine decay from lr towards 0 over the epochs",
    )
    weight_decay: float = Field(default=1e-4, ge=0)
    seed: int = 0
    select: Literal["best", "last"] = Field(
        default="best",
        description="the checkpoint that becomes the model: best val_accuracy (ties: lower "
        "val_nll, then later) or the last one",
    )
    target_tpr: float = Field(default=0.95, gt=0, le=1, description="known validation rows the threshold accepts")
    family_threshold: float = Field(default=0.9, gt=0, le=1)


class ScalingOptions(StrictModel):
    """Where and how many workers train, and where their checkpoints go."""

    num_workers: int = Field(default=1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1.0, gt=0)
    checkpoint_prefix: str = Field(default="train", min_length=1, description="runs go to <prefix>/<name>/")
    max_failures: int = Field(default=1, ge=-1, description="worker-group restarts from the latest checkpoint")
    keep_checkpoints: int | None = Field(
        default=3, ge=1, description="best by val_accuracy; the latest is always kept. None: keep all"
    )


class TrainJobConfig(JobConfig):
    """One training run; ``name`` identifies it (checkpoints, MLflow run), so a rerun resumes it."""

    name: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    data: DataConfig
    model: DecouplerOptions = Field(default_factory=DecouplerOptions)
    train: TrainOptions = TrainOptions()
    scaling: ScalingOptions = ScalingOptions()
    generated: GeneratedHeadOptions | None = Field(
        default=None,
        description="a generated-vs-real head fitted after training and saved with the model (None: no head)",
    )

    def recipe(self) -> dict[str, Any]:
        """What a resumed run must share with its checkpoints besides the model config: the rows it trains on
        (``data``) and the train options that shape the trajectory. ``epochs`` may grow at a constant rate; a
        cosine schedule's length is part of it (more epochs would restart the decay midway), so it is pinned."""
        keys = ("lr", "schedule", "batch_size", "weight_decay", "seed")
        return {
            "data": self.data.model_dump(mode="json"),
            **{k: getattr(self.train, k) for k in keys},
            **({"epochs": self.train.epochs} if self.train.schedule == "cosine" else {}),
        }

    def decoupler_config(self, data: AttributionData) -> DecouplerConfig:
        config = DecouplerConfig(
            input_dim=data.input_dim,
            num_classes=data.num_classes,
            class_names=data.class_names,
            architectures=data.class_architectures,
            **self.model.model_dump(),
        )
        if not data.known_train.all() and not config.has_architecture_head:
            raise ValueError(
                f"data.architecture_only_sources {self.data.architecture_only_sources} train only the "
                f"architecture head, which needs model.w_arch > 0 and two architectures among the "
                f"classes (w_arch={config.w_arch}, architectures {data.arch_names})"
            )
        return config
