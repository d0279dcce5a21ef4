"""Registered versions of the attributor in the MLflow model registry: register one, point an alias at it,
resolve and download one by its ``models:/`` URI.

A registered version is an MLflow run of its own (a child of the training run, when there is one) whose
artifacts are the attributor folder and the report (:mod:`causalprint.tracking.artifacts`) and whose metrics
are the evaluation's. Aliases: ``candidate`` is the latest registered version, ``champion`` the one that passed
the gate (:func:`causalprint.tracking.gate.promote_if_better`). Load with
``load_attributor("models:/causalprint-attributor@champion")``.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from causalprint.attribution.training.driver import TrainResult
from causalprint.attribution.training.mlflow_run import KIND_TAG, RUN_TAG
from causalprint.tracking.artifacts import ARTIFACT_PATH, REPORT_PATH, LoadedAttributor, save_attributor, write_report

log = logging.getLogger(__name__)

__all__ = [
    "CANDIDATE",
    "CHAMPION",
    "load_attributor",
    "log_version",
    "MODEL_NAME",
    "parse_model_uri",
    "pin_model_uri",
    "register_version",
    "RegisteredVersion",
    "resolve_version",
]

MODEL_NAME = "causalprint-attributor"
CANDIDATE, CHAMPION = "candidate", "champion"


def resolve_version(
    name: str, *, version: str | None = None, alias: str | None = None, tracking_uri: str | None = None
) -> tuple[str, str]:
    """``(version, artifact URI)`` of the registered version ``version`` of ``name``, or of the one ``alias``
    points at now. The registry is the one in the tracking store ``tracking_uri`` (MLflow would otherwise use its
    global registry URI)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if alias:
        version = str(client.get_model_version_by_alias(name, alias).version)
    if version is None:
        raise ValueError(f"resolve_version of {name!r} needs a version or an alias")
    return str(version), client.get_model_version_download_uri(name, version)


_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of ``models:/<name>/<version>`` (alias None) or ``models:/<name>@<alias>``
    (version None); a ValueError names the two forms for anything else."""
    match = _MODELS_URI.match(uri)
    if match is None:
        raise ValueError(
            f"{uri!r} is not a registered model URI: use models:/<name>@<alias> or models:/<name>/<version>"
        )
    return match["name"], match["version"], match["alias"]


def pin_model_uri(uri: str, tracking_uri: str | None = None) -> str:
    """``models:/<name>@<alias>`` -> ``models:/<name>/<version>`` it points at now; other URIs unchanged."""
    if not uri.startswith("models:/"):
        return uri
    name, version, alias = parse_model_uri(uri)
    return f"models:/{name}/{resolve_version(name, version=version, alias=alias, tracking_uri=tracking_uri)[0]}"


def load_attributor(uri: str, dst: str | Path | None = None, tracking_uri: str | None = None) -> LoadedAttributor:
    """Download ``uri`` (``models:/causalprint-attributor@champion``, ``models:/<name>/<version>``, or a
    ``runs:/<id>/attributor`` URI) and rebuild it with our own loaders."""
    import mlflow

    if uri.startswith("models:/") and tracking_uri:
        name, version, alias = parse_model_uri(uri)
        _, uri = resolve_version(name, version=version, alias=alias, tracking_uri=tracking_uri)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(dst) if dst else None, tracking_uri=tracking_uri
    )
    return LoadedAttributor.from_folder(local)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    source: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def mlflow_client(client: Any, tracking_uri: str | None) -> Any:
    """``client``, or a new MlflowClient of ``tracking_uri`` when it is None."""
    import mlflow

    return client if client is not None else mlflow.MlflowClient(tracking_uri=tracking_uri)


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def register_version(
    result: TrainResult,
    *,
    model_name: str = MODEL_NAME,
    alias: str = CANDIDATE,
    client: Any = None,
    experiment: str = "causalprint",
) -> RegisteredVersion:
    """Log ``result`` as a new MLflow run (artifacts: the attributor folder and the report; metrics: the
    evaluation), register it as a new version of ``model_name`` and point ``alias`` at it.

    The run is a child of the training run when ``result.mlflow_run_id`` is set (its experiment too), else a
    run of ``experiment`` (configure MLflow first, :func:`~causalprint.tracking.mlflow_setup.configure_mlflow`, so
    that a new experiment keeps its artifacts in storage). One run per version keeps every version's files
    immutable.
    """
    client = mlflow_client(client, result.tracking_uri)
    tags = {RUN_TAG: result.name, KIND_TAG: "attributor-version"}
    if result.mlflow_run_id:
        experiment_id = client.get_run(result.mlflow_run_id).info.experiment_id
        tags["mlflow.parentRunId"] = result.mlflow_run_id
    else:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    params = {
        "train_name": result.name,
        "features": result.features,
        "reference_id": result.data.reference_id,
        "columns": ",".join(result.data.columns),
        "class_names": ",".join(result.data.class_names),
        "checkpoint": result.checkpoint_uri,
        "epochs_completed": result.epochs_completed,
    }

    def write(folder: Path) -> None:
        save_attributor(result, folder / ARTIFACT_PATH)
        write_report(result, folder / REPORT_PATH)

    return log_version(
        client,
        model_name=model_name,
        experiment_id=experiment_id,
        run_name=f"register-{result.name}",
        tags=tags,
        params=params,
        metrics=result.metrics,
        write=write,
        alias=alias,
        version_tags={
            "reference_id": result.data.reference_id,
            "columns": json.dumps(result.data.columns),
            "train_name": result.name,
        },
        description=f"training {result.name!r} on {result.features}, epoch checkpoint {result.checkpoint_uri}",
    )


def log_version(
    client: Any,
    *,
    model_name: str,
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    write: Callable[[Path], None],
    version_tags: Mapping[str, str],
    description: str,
    alias: str,
) -> RegisteredVersion:
    """One MLflow run holding what ``write(folder)`` puts in ``folder/attributor`` (and ``folder/report``, if
    written), ``params`` and ``metrics``; registered as a new version of ``model_name`` with ``alias``."""
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException
    from mlflow.utils.time import get_current_time_millis

    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    run_id = run.info.run_id
    try:
        now = get_current_time_millis()
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:500]) for k, v in params.items()],
        )
        with tempfile.TemporaryDirectory() as tmp:
            write(Path(tmp))
            for path in (ARTIFACT_PATH, REPORT_PATH):
                if (Path(tmp) / path).is_dir():
                    client.log_artifacts(run_id, str(Path(tmp) / path), path)
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")

    try:
        client.get_registered_model(model_name)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        client.create_registered_model(model_name, description="causalprint open-set source attributor")
    source = f"{run.info.artifact_uri}/{ARTIFACT_PATH}"
    version = client.create_model_version(
        model_name, source, run_id=run_id, tags=dict(version_tags), description=description
    )
    client.set_registered_model_alias(model_name, alias, version.version)
    log.info("registered %s version %s (alias %s) from run %s", model_name, version.version, alias, run_id)
    return RegisteredVersion(model_name, str(version.version), run_id, source)
