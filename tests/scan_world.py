"""A small, real attribution world shared by the scan and benchmark tests: synthetic images of three "sources",
features extracted by the extraction job against the tiny reference model, and a decoupler fitted in-process and
registered as the champion in a sqlite MLflow registry inside the world's storage."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from causalprint.attribution.calibration import calibrate
from causalprint.attribution.dataset import DataConfig, load_attribution_data
from causalprint.attribution.model import DecouplerConfig, fit_decoupler
from causalprint.attribution.training.config import TrainJobConfig
from causalprint.attribution.training.driver import TrainResult
from causalprint.attribution.training.evaluate import evaluate
from causalprint.extraction.config import ActorConfig, ExtractConfig, ExtractJobConfig, SpaceSpec
from causalprint.extraction.pipeline import run_extract
from causalprint.scan.config import ScanConfig, ScanJobConfig
from causalprint.storage import Storage, StorageConfig
from causalprint.storage.folders import upload_folder
from causalprint.tracking.mlflow_setup import MlflowConfig, configure_mlflow, tracking_uri_for
from causalprint.tracking.versions import register_version
from causalprint.zoo.manifest import MANIFEST_SCHEMA

REFERENCE = "models/reference/tiny"
# What presets/train/tiny.yaml registers and presets/scan/tiny.yaml scans with.
TINY_MODEL = "causalprint-attributor-tiny"
CHAMPION = f"models:/{TINY_MODEL}@champion"
LEGACY = "legacy-attributor"
SOURCES = {"smooth": "gan", "noisy": "diffusion", "blocky": "diffusion"}
COLUMNS = ["image.dct", "image.fourier"]
SIZE = 16


def _image(source: str, rng: np.random.Generator) -> np.ndarray:
    """A 16x16 RGB image whose texture depends on its source."""
    if source == "smooth":
        ramp = np.linspace(0, 1, SIZE)
        base = rng.uniform(0, 255, 3) * np.add.outer(ramp, ramp)[..., None] / 2
    elif source == "noisy":
        base = rng.normal(128, 60, (SIZE, SIZE, 3))
    else:
        base = np.kron(rng.uniform(0, 255, (4, 4, 3)), np.ones((4, 4, 1)))
    return np.clip(base, 0, 255).astype(np.uint8)


def write_mosaics(storage: Storage, folder: str, per_source: int, seed: int) -> dict[str, np.ndarray]:
    """``per_source`` fresh images of twice the model's size per source, each a 2x2 mosaic of four new images of
    that source (``<folder>/<source>-<i>.png``; none of them trained or calibrated a model). Returns the URIs, each
    with its four quarters ``[4, SIZE, SIZE, 3]`` in row order (the tiles intake's own order)."""
    rng = np.random.default_rng(seed)
    out = {}
    for source in SOURCES:
        for i in range(per_source):
            quarters = np.stack([_image(source, rng) for _ in range(4)])
            mosaic = np.concatenate([np.concatenate(list(quarters[:2]), 1), np.concatenate(list(quarters[2:]), 1)])
            uri = storage.uri(folder, f"{source}-{i:03d}.png")
            storage.write_bytes(uri, _png(mosaic))
            out[uri] = quarters
    return out


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class World:
    storage: Storage
    tracking_uri: str
    inbox: str  # the folder the scans read: heldout images and two bad files
    good: list[str]
    bad: dict[str, str]  # uri -> expected error kind

    def job(
        self, output: str, *, source: str | None = None, storage: StorageConfig | None = None, batch_size: int = 4
    ) -> ScanJobConfig:
        return ScanJobConfig(
            storage=storage or self.storage.config,
            ray={"object_store_mb": 256},
            mlflow=MlflowConfig(tracking_uri=self.tracking_uri),
            scan=ScanConfig(
                source=source or self.inbox,
                model=CHAMPION,
                reference=REFERENCE,
                output=output,
                batch_size=batch_size,
                actors=ActorConfig(max_actors=1),
            ),
        )


def _write_images(storage: Storage, train: int, heldout: int) -> tuple[pa.Table, list[str], dict[str, str]]:
    rng = np.random.default_rng(0)
    rows, inbox = [], []
    for source, family in SOURCES.items():
        for split, count in (("train", train), ("heldout", heldout)):
            for i in range(count):
                data = _png(_image(source, rng))
                uri = storage.uri("images", source, split, f"{i:03d}.png")
                storage.write_bytes(uri, data)
                rows.append(
                    {
                        "uri": uri,
                        "source": source,
                        "arch": source,
                        "family": family,
                        "content_group": "synthetic",
                        "seed": 0,
                        "split": split,
                        "index": i,
                    }
                )
                if split == "heldout":
                    inbox.append(storage.uri("inbox", f"{source}-{i:03d}.png"))
                    storage.write_bytes(inbox[-1], data)
    png = storage.read_bytes(inbox[0])
    bad = {storage.uri("inbox", "truncated.png"): "truncated", storage.uri("inbox", "notes.jpg"): "not_an_image"}
    storage.write_bytes(storage.uri("inbox", "truncated.png"), png[: len(png) // 2])
    storage.write_bytes(storage.uri("inbox", "notes.jpg"), b"plain text, not a JPEG")
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), sorted(inbox), bad


def register_model(storage: Storage, tracking_uri: str, job: TrainJobConfig | None, model_name: str) -> None:
    """Fit a small decoupler in-process, register it and make it the champion of ``model_name``."""
    import mlflow

    data = load_attribution_data(storage, job.data if job else DataConfig(features="features/scan", columns=COLUMNS))
    torch.manual_seed(0)
    config = DecouplerConfig(
        input_dim=data.input_dim,
        num_classes=data.num_classes,
        class_names=data.class_names,
        architectures=[data.architectures[n] for n in data.class_names],
        hidden=32,
        fp_dim=8,
        content_dim=4,
    )
    model = fit_decoupler(data.x_train, data.y_train, config, epochs=20, batch_size=16, lr=1e-2, seed=0)
    calibration = calibrate(model, data)
    result = TrainResult(
        name="scan-test",
        model=model,
        calibration=calibration,
        data=data,
        metrics=evaluate(model, calibration, data),
        history=[],
        checkpoint_uri="(in-process)",
        epochs_completed=20,
        features=job.data.features if job else "features/scan",
        tracking_uri=tracking_uri,
        job=job,
    )
    client = mlflow.MlflowClient(tracking_uri)
    version = register_version(result, model_name=model_name, client=client)
    client.set_registered_model_alias(model_name, "champion", version.version)


def extract(storage: Storage, output: str, mode: str) -> None:
    """Extract the world's images (``manifest.parquet``) with residual ``mode`` into dct and fourier columns."""
    run_extract(
        ExtractJobConfig(
            storage=storage.config,
            ray={"object_store_mb": 256},
            extract=ExtractConfig(
                input="manifest.parquet",
                output=output,
                reference=REFERENCE,
                modes={mode: {}},
                spaces=[SpaceSpec(name="dct"), SpaceSpec(name="fourier")],
                batch_size=16,
                actors=ActorConfig(max_actors=1),
            ),
        )
    )


def build_world(
    tmp_path_factory: pytest.TempPathFactory, tiny_reference_dir: Path, *, train: int = 12, heldout: int = 4
) -> World:
    """Build the world in a fresh folder, with ``train`` and ``heldout`` images per source (Ray must be running)."""
    storage = Storage(StorageConfig(root=str(tmp_path_factory.mktemp("scan-world"))))
    upload_folder(storage, tiny_reference_dir, REFERENCE)
    manifest, good, bad = _write_images(storage, train, heldout)
    storage.write_parquet(storage.uri("manifest.parquet"), manifest)
    extract(storage, "features/scan", "image")
    configure_mlflow(MlflowConfig(), storage)  # the experiment keeps its artifacts in storage
    tracking_uri = tracking_uri_for(MlflowConfig(), storage)
    train = TrainJobConfig(storage=storage.config, data=DataConfig(features="features/scan", columns=COLUMNS))
    register_model(storage, tracking_uri, train, TINY_MODEL)
    register_model(storage, tracking_uri, None, LEGACY)  # as registered before requirements held the extraction
    return World(storage, tracking_uri, storage.uri("inbox"), good, bad)
