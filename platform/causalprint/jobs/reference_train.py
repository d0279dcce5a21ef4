"""``causalprint reference train``: train the reference diffusion model on real images, save it to
``models/reference/<name>/`` in storage and record the run in MLflow."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from typing import Any

from causalprint.residual.pretrain import ReferenceTrainConfig, real_training_images, reference_prefix, train_reference
from causalprint.runtime.job_config import JobConfig
from causalprint.storage import Storage
from causalprint.storage.folders import upload_folder
from causalprint.tracking.mlflow_setup import configure_mlflow

log = logging.getLogger(__name__)


class PretrainJobConfig(JobConfig):
    reference: ReferenceTrainConfig = ReferenceTrainConfig()


CONFIG = PretrainJobConfig


def run(job: PretrainJobConfig) -> dict[str, Any]:
    """Train, save to ``models/reference/<name>/`` in storage, and log the run to MLflow."""
    import mlflow

    storage = Storage(job.storage)
    storage.ensure_bucket()
    cfg = job.reference
    start = time.perf_counter()
    model, metrics = train_reference(cfg, real_training_images(cfg, job.storage))
    seconds = time.perf_counter() - start
    prefix = storage.uri(reference_prefix(cfg.name))
    configure_mlflow(job.mlflow, storage)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=f"reference-{cfg.name}") as run:
        identity = model.save_pretrained(tmp, name=cfg.name)
        storage.delete_prefix(prefix)
        upload_folder(storage, tmp, prefix, last="causalprint_reference.json")
        mlflow.log_params({k: v for k, v in cfg.model_dump().items() if not isinstance(v, dict)})
        mlflow.log_metrics({**metrics, "train_seconds": seconds})
        mlflow.set_tags(
            {
                "causalprint.kind": "reference",
                "causalprint.reference_id": identity.id,
                "causalprint.reference_uri": prefix,
            }
        )
        mlflow.log_artifacts(tmp, artifact_path="reference")
        run_id = run.info.run_id
    log.info("reference %s saved to %s (%.0fs), MLflow run %s", identity.id, prefix, seconds, run_id)
    return {
        "reference_id": identity.id,
        "uri": prefix,
        "train_seconds": round(seconds, 1),
        "mlflow_run": run_id,
        **metrics,
    }


def describe(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)
