"""The training driver: check the run's existing checkpoints, train on Ray Train, calibrate and evaluate the
chosen checkpoint, and log it all to the run's MLflow run (the steps are in the package docstring)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causalprint.attribution.calibration import Calibration, calibrate
from causalprint.attribution.dataset import AttributionData, load_attribution_data
from causalprint.attribution.generated import GeneratedHead, fit_generated_head
from causalprint.attribution.model import CausalDecoupler
from causalprint.attribution.training.checkpoints import (
    SELECT_METRIC,
    check_existing_run,
    load_checkpoint,
    select_checkpoint,
)
from causalprint.attribution.training.config import TrainJobConfig
from causalprint.attribution.training.evaluate import evaluate
from causalprint.attribution.training.mlflow_run import mlflow_metric, open_mlflow_run
from causalprint.attribution.training.worker import train_loop_per_worker
from causalprint.storage import Storage

log = logging.getLogger(__name__)

__all__ = ["extraction_requirements", "run_training", "TrainResult"]


def extraction_requirements(storage: Storage, features: str | list[str], columns: list[str]) -> dict[str, Any] | None:
    """How ``columns`` were extracted, from ``<features>/_extraction.json`` (of the first prefix, when training
    read several: the others are perturbed copies of the same extraction): the reference id, the image size and
    only the modes (with options) and spaces (with weights and options) that ``columns`` use; None if absent."""
    first = features if isinstance(features, str) else features[0]
    uri = f"{storage.resolve(first)}/_extraction.json"
    if not storage.exists(uri):
        return None
    spec = storage.read_json(uri)
    modes = {c.partition(".")[0] for c in columns}
    spaces = {c.partition(".")[2] for c in columns}
    return {
        "reference_id": spec["reference_id"],
        "image_size": spec["image_size"],
        "modes": {m: opts for m, opts in spec["modes"].items() if m in modes},
        "spaces": [s for s in spec["spaces"] if s["name"] in spaces],
    }


@dataclass
class TrainResult:
    """Everything registration needs: the chosen model (eval mode), its calibration, the data it saw, metrics."""

    name: str
    model: CausalDecoupler
    calibration: Calibration
    data: AttributionData
    metrics: dict[str, float]
    history: list[dict[str, float]]
    checkpoint_uri: str
    epochs_completed: int
    features: str | list[str]
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None
    job: TrainJobConfig | None = field(default=None, repr=False)
    generated: GeneratedHead | None = None  # the generated-vs-real head, when the job asks for one

    @property
    def requirements(self) -> dict[str, Any]:
        """What an input must match: the reference model and the concatenated feature columns; ``extraction``
        (see :func:`extraction_requirements`) tells a scan how to rebuild them, when the job's storage has it."""
        requirements = {
            "reference_id": self.data.reference_id,
            "columns": self.data.columns,
            "column_dims": self.data.column_dims,
            "input_dim": self.data.input_dim,
            "features": self.features,
        }
        if self.job is not None:
            extraction = extraction_requirements(Storage(self.job.storage), self.features, self.data.columns)
            if extraction is not None:
                requirements["extraction"] = extraction
        return requirements


def _fit(
    job: TrainJobConfig,
    storage: Storage,
    tracking_uri: str,
    run_id: str,
    on_epoch_end: Callable[[int, int], None] | None,
    on_shard: Callable[[int, int, Any], None] | None = None,
) -> None:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from causalprint.runtime.ray_local import ensure_ray

    ensure_ray(job.ray)
    prefix = storage.uri(job.scaling.checkpoint_prefix)
    run_config = RunConfig(
        name=job.name,  # the same name and storage path: Ray Train restores the run's checkpoint state
        storage_path=storage.fs_path(prefix) if storage.is_s3 else prefix,
        storage_filesystem=storage.filesystem if storage.is_s3 else None,
        failure_config=FailureConfig(max_failures=job.scaling.max_failures),
        checkpoint_config=CheckpointConfig(
            num_to_keep=job.scaling.keep_checkpoints,
            checkpoint_score_attribute=SELECT_METRIC,
            checkpoint_score_order="max",
        ),
    )
    TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "job": job,
            "tracking_uri": tracking_uri,
            "run_id": run_id,
            "on_epoch_end": on_epoch_end,
            "on_shard": on_shard,
        },
        scaling_config=ScalingConfig(
            num_workers=job.scaling.num_workers,
            use_gpu=job.scaling.use_gpu,
            resources_per_worker={"CPU": job.scaling.cpus_per_worker},
        ),
        run_config=run_config,
    ).fit()


def run_training(
    job: TrainJobConfig,
    *,
    on_epoch_end: Callable[[int, int], None] | None = None,
    on_shard: Callable[[int, int, Any], None] | None = None,
) -> TrainResult:
    """Train on Ray Train (resuming the run ``job.name`` if it has checkpoints), calibrate, evaluate, log.

    A run whose checkpoints already reach ``train.epochs`` is not started again: it is only calibrated and
    evaluated. ``on_epoch_end(epoch, rank)`` runs inside each worker after every epoch's report (telemetry,
    fault tests); ``on_shard(epoch, rank, rows)`` runs inside each worker before every epoch's steps, with the
    positions in the train rows of that worker's shard (tests of the sharding). Both must be picklable.
    """
    import mlflow

    from causalprint.storage.folders import download_folder

    if not job.storage.is_s3:  # workers run in Ray's session folder: a relative root must not follow them there
        job = job.model_copy(
            update={"storage": job.storage.model_copy(update={"root": str(Path(job.storage.root).resolve())})}
        )
    storage = Storage(job.storage)
    data = load_attribution_data(storage, job.data)  # fails fast, before any worker starts
    done = check_existing_run(job, storage, data)
    log.info(
        "training %s on %s (%s): %s",
        job.name,
        job.data.features,
        f"{done} epochs already done" if done else "new run",
        data.summary(),
    )
    tracking_uri, run_id = open_mlflow_run(job, storage, data)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:  # whatever fails after the run is opened marks it FAILED, not left RUNNING
        if done < job.train.epochs:
            del data  # the workers read their own copy; holding this one too doubles the node's memory
            _fit(job, storage, tracking_uri, run_id, on_epoch_end, on_shard)
            data = load_attribution_data(storage, job.data)
        epoch, uri, history = select_checkpoint(job, storage)
        with tempfile.TemporaryDirectory() as tmp:
            model = load_checkpoint(download_folder(storage, uri, tmp)).model.eval()
        calibration = calibrate(model, data, job.train.target_tpr, job.train.family_threshold)
        generated = fit_generated_head(data, job.generated) if job.generated is not None else None
        metrics = {
            **evaluate(model, calibration, data),
            "chosen_epoch": float(epoch),
            "epochs_completed": float(len(history)),
        }
        client.log_batch(run_id, metrics=[mlflow_metric(k, v) for k, v in metrics.items()])
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    log.info("training %s: epoch %d chosen (%s), %s", job.name, epoch, job.train.select, metrics)
    return TrainResult(
        name=job.name,
        model=model,
        calibration=calibration,
        data=data,
        metrics=metrics,
        history=history,
        checkpoint_uri=uri,
        epochs_completed=len(history),
        features=job.data.features,
        mlflow_run_id=run_id,
        tracking_uri=tracking_uri,
        job=job,
        generated=generated,
    )
