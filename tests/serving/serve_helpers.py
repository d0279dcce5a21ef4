"""Helpers of the serving tests: the world's serve config, an in-process client, and a file's true source."""

from __future__ import annotations

from pathlib import Path

from scan_world import CHAMPION, REFERENCE, World

from causalprint.serving.api import create_api
from causalprint.serving.config import ServeJobConfig, ServeOptions
from causalprint.serving.keys import KeyRing
from causalprint.serving.local import LocalBackend
from causalprint.serving.model_server import ModelServer
from causalprint.tracking.mlflow_setup import MlflowConfig


def serve_job(world: World, **options: object) -> ServeJobConfig:
    return ServeJobConfig(
        storage=world.storage.config,
        ray={"object_store_mb": 256},
        mlflow=MlflowConfig(tracking_uri=world.tracking_uri),
        serve=ServeOptions(model=CHAMPION, reference=REFERENCE, **options),
    )


def make_client(server: ModelServer, keys: dict | None = None, **options: object):
    from fastapi.testclient import TestClient

    opts = server.job.serve.model_copy(update=options)
    ring = KeyRing([record for _, record in keys.values()]) if keys else KeyRing([])
    return TestClient(create_api(opts, LocalBackend(server), server.storage, ring), raise_server_exceptions=False)


def source_of(uri: str) -> str:
    """The true source of an inbox file of the scan world (``inbox/<source>-<i>.png``)."""
    return Path(uri).name.split("-")[0]
