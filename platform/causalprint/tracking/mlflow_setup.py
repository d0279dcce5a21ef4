"""Point MLflow at the configured tracking store: a sqlite file by default, a tracking server in a cluster."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from causalprint.config import StrictModel
from causalprint.storage import Storage


class MlflowConfig(StrictModel):
    """``tracking_uri`` also serves as the registry; artifacts go to ``artifact_location`` (local or s3://).

    Defaults keep everything beside the data: a sqlite file in a local storage root (or ``.causalprint/`` when
    the storage is S3) and artifacts under ``<storage root>/mlartifacts``.
    """

    tracking_uri: str | None = None
    experiment: str = Field(default="causalprint", min_length=1)
    artifact_location: str | None = None


def tracking_uri_for(config: MlflowConfig, storage: Storage) -> str:
    if config.tracking_uri:
        return config.tracking_uri
    base = Path(storage.root) if not storage.is_s3 else Path(".causalprint")
    return f"sqlite:///{(base / 'mlflow.db').resolve()}"


def configure_mlflow(config: MlflowConfig, storage: Storage) -> str:
    """Set the tracking URI and the experiment (created if absent); returns the experiment id."""
    import mlflow

    uri = tracking_uri_for(config, storage)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if storage.endpoint_url:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = storage.endpoint_url
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(config.experiment)
    if experiment is not None:
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
        return experiment.experiment_id
    location = config.artifact_location or storage.uri("mlartifacts")
    if not storage.is_s3 and "://" not in location:
        location = Path(location).resolve().as_uri()
    experiment_id = mlflow.create_experiment(config.experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
