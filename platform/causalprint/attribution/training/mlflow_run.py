"""The training's MLflow run: found again by its name's tag, its parameters, its per-epoch and final metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from causalprint.attribution.dataset import AttributionData
from causalprint.attribution.training.config import TrainJobConfig
from causalprint.storage import Storage

log = logging.getLogger(__name__)

__all__ = ["epoch_logger", "KIND_TAG", "mlflow_metric", "open_mlflow_run", "RUN_TAG"]

RUN_TAG = "causalprint.train_name"
KIND_TAG = "causalprint.kind"  # what a run that is not a training run holds (a version's registration, ...)


def epoch_logger(tracking_uri: str | None, run_id: str | None) -> Callable[[dict[str, float], int], None]:
    """A logger of per-epoch metrics into the driver's MLflow run (rank 0 only; a no-op without a run)."""
    if not tracking_uri or not run_id:
        return lambda metrics, step: None
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)

    def log_epoch(metrics: dict[str, float], step: int) -> None:
        now = mlflow.utils.time.get_current_time_millis()
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    return log_epoch


def _flat_params(job: TrainJobConfig, data: AttributionData) -> dict[str, str]:
    params = {
        "name": job.name,
        "features": job.data.features,
        "columns": ",".join(job.data.columns),
        "held_out_sources": ",".join(job.data.held_out_sources),
        "reference_id": data.reference_id,
        "class_names": ",".join(data.class_names),
        **{f"data.{k}": v for k, v in data.summary().items()},
    }
    for section in ("model", "train", "scaling"):
        params.update({f"{section}.{k}": v for k, v in getattr(job, section).model_dump().items()})
    return {k: str(v)[:500] for k, v in params.items()}


def open_mlflow_run(job: TrainJobConfig, storage: Storage, data: AttributionData) -> tuple[str, str]:
    """The MLflow run of this training name: reopened if one exists (a rerun resumes), else created."""
    import mlflow

    from causalprint.tracking.mlflow_setup import configure_mlflow

    experiment_id = configure_mlflow(job.mlflow, storage)
    client = mlflow.MlflowClient()
    named = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_TAG}` = '{job.name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    # The runs of the versions registered from it carry the name too (and a kind); they are newer, not it.
    found = [run for run in named if KIND_TAG not in run.data.tags]
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        log.info("reopened MLflow run %s of training %s", run_id, job.name)
    else:
        run_id = client.create_run(experiment_id, run_name=f"train-{job.name}", tags={RUN_TAG: job.name}).info.run_id
        from mlflow.entities import Param

        client.log_batch(run_id, params=[Param(k, v) for k, v in _flat_params(job, data).items()])
    return mlflow.get_tracking_uri(), run_id


def mlflow_metric(key: str, value: float) -> Any:
    import mlflow
    from mlflow.entities import Metric

    return Metric(key, float(value), mlflow.utils.time.get_current_time_millis(), 0)
