"""``causalprint ssl train``: train the ``ssl`` feature space, a self-supervised encoder on residuals of real
images only."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from typing import Any

import torch
from pydantic import Field

from causalprint.extraction.actors import image_seeds, load_reference
from causalprint.features.ssl_training import SSLTrainConfig, save_ssl_encoder, train_ssl_encoder
from causalprint.residual.pretrain import ReferenceTrainConfig, real_training_images
from causalprint.residual.registry import create_mode
from causalprint.runtime.job_config import JobConfig
from causalprint.storage import Storage
from causalprint.storage.folders import upload_folder
from causalprint.tracking.mlflow_setup import configure_mlflow

log = logging.getLogger(__name__)


class SSLJobConfig(JobConfig):
    """Which reference model's residuals, from which real crops, and how the encoder trains."""

    name: str = Field(default="tiny", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    reference: str = "models/reference/tiny"
    residual_mode: str = "one_step"
    residual_options: dict[str, Any] = Field(default_factory=dict)
    real_images: ReferenceTrainConfig = Field(
        default_factory=lambda: ReferenceTrainConfig(image_size=16, train_crops=64, seed=101),
        description="photos, crops, count and seed of the real images (only those fields are used)",
    )
    train: SSLTrainConfig = SSLTrainConfig()


def ssl_prefix(name: str) -> str:
    return f"models/ssl/{name}"


CONFIG = SSLJobConfig


def run(job: SSLJobConfig) -> dict[str, Any]:
    """Residuals of real crops -> NT-Xent encoder -> ``models/ssl/<name>/`` in storage, logged to MLflow."""
    import mlflow

    storage = Storage(job.storage)
    reference = load_reference(storage, job.reference)
    images = real_training_images(job.real_images, job.storage)
    mode = create_mode(job.residual_mode, reference, **job.residual_options)
    uint8 = images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    residuals = torch.cat(
        [
            mode(chunk, image_seeds(u8))
            for chunk, u8 in zip(images.split(256), [uint8[i : i + 256] for i in range(0, len(uint8), 256)])
        ]
    )
    start = time.perf_counter()
    losses: list[float] = []  # train_ssl_encoder logs progress itself
    encoder = train_ssl_encoder(residuals, job.train, on_step=lambda step, loss: losses.append(loss))
    seconds = time.perf_counter() - start
    prefix = storage.uri(ssl_prefix(job.name))
    configure_mlflow(job.mlflow, storage)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=f"ssl-{job.name}") as run:
        save_ssl_encoder(encoder, tmp)
        storage.delete_prefix(prefix)
        upload_folder(storage, tmp, prefix)
        mlflow.log_params(
            {
                "reference": reference.identity.id,
                "residual_mode": job.residual_mode,
                "images": len(images),
                **job.train.model_dump(exclude={"encoder"}),
            }
        )
        mlflow.log_metrics({"final_loss": losses[-1], "first_loss": losses[0], "train_seconds": seconds})
        mlflow.log_artifacts(tmp, artifact_path="ssl")
        run_id = run.info.run_id
    log.info("ssl encoder %s saved to %s (%.0fs)", job.name, prefix, seconds)
    return {
        "uri": prefix,
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "train_seconds": round(seconds, 1),
        "mlflow_run": run_id,
        "reference_id": reference.identity.id,
    }


def describe(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)
