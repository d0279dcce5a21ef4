"""The world of the versions and gate tests: test_training's synthetic extraction output in a storage root with a
sqlite MLflow store, and tiny attributors trained on it in-process (fit_decoupler), so no Ray is needed;
test_training covers the Ray path up to the TrainResult that is registered here."""

from __future__ import annotations

from pathlib import Path

import torch
from test_training import COLUMNS, TINY_MODEL, write_features

from causalprint.attribution.calibration import calibrate
from causalprint.attribution.dataset import AttributionData, DataConfig, load_attribution_data
from causalprint.attribution.model import DecouplerConfig, fit_decoupler
from causalprint.attribution.training.driver import TrainResult
from causalprint.attribution.training.evaluate import evaluate
from causalprint.storage import Storage, StorageConfig
from causalprint.tracking.mlflow_setup import MlflowConfig, configure_mlflow

FEATURES = "features/synth"


def tracking_store(root: Path) -> tuple[Storage, str]:
    """``root`` as a storage root holding the synthetic features and a sqlite MLflow store: (storage, its URI)."""
    import mlflow

    storage = Storage(StorageConfig(root=str(root)))
    write_features(storage, FEATURES)
    configure_mlflow(MlflowConfig(), storage)
    return storage, mlflow.get_tracking_uri()


def synthetic_data(
    storage: Storage, columns: list[str] | None = None, held_out: tuple[str, ...] = ("gan-a",)
) -> AttributionData:
    """The synthetic rows read through ``columns`` (default: all), the ``held_out`` sources left out of the
    classes; with the defaults the classes are real, sd-a and sd-b."""
    return load_attribution_data(
        storage, DataConfig(features=FEATURES, columns=columns or list(COLUMNS), held_out_sources=list(held_out))
    )


def trained(data: AttributionData, name: str, epochs: int, lr: float, tracking_uri: str) -> TrainResult:
    """A TrainResult as the training job makes it, of a tiny decoupler fitted in-process on ``data``."""
    torch.manual_seed(0)
    config = DecouplerConfig(
        input_dim=data.input_dim, num_classes=data.num_classes, class_names=data.class_names, **TINY_MODEL
    )
    model = fit_decoupler(data.x_train, data.y_train, config, epochs=epochs, batch_size=16, lr=lr, seed=0)
    calibration = calibrate(model, data)
    return TrainResult(
        name=name,
        model=model,
        calibration=calibration,
        data=data,
        metrics=evaluate(model, calibration, data),
        history=[],
        checkpoint_uri="(in-process)",
        epochs_completed=epochs,
        features=FEATURES,
        tracking_uri=tracking_uri,
    )
