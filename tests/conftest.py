"""Session-wide services for the tests: one local Ray and one S3-protocol server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
# The CLI's log file: out of the working tree while tests call main().
os.environ.setdefault(
    "CAUSALPRINT_LOG_FILE", os.path.join(tempfile.gettempdir(), f"causalprint-tests-{os.getpid()}.log")
)
# The S3 server accepts any credentials; the variables only stop boto3 and pyarrow from searching for real ones.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Test models are tiny: threads only add start-up, and on a busy 2-core machine oversubscribed OpenMP
    threads stall (an SSL training test took 0.6 s on one thread and over 20 s on two)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-protocol HTTP server (moto) on 127.0.0.1 for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3_bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty bucket on the session's S3 server; returns its name."""
    import re
    import uuid

    import boto3

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the whole test session (start-up costs seconds)."""
    from causalprint.runtime.ray_local import ensure_ray, shutdown_ray

    ensure_ray()
    yield
    shutdown_ray()


@pytest.fixture(scope="session")
def tiny_reference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny reference model, trained for a few steps on real crops and saved by our own code."""
    from causalprint.residual.pretrain import ReferenceTrainConfig, real_training_images, train_reference

    cfg = ReferenceTrainConfig(
        name="tiny",
        image_size=16,
        train_crops=32,
        unet_width=8,
        unet_levels=2,
        unet_steps=3,
        vae_width=8,
        vae_steps=3,
        batch_size=8,
    )
    model, _ = train_reference(cfg, real_training_images(cfg))
    directory = tmp_path_factory.mktemp("reference")
    model.save_pretrained(directory, name="tiny")
    return directory


@pytest.fixture()
def tiny_reference(tiny_reference_dir: Path):
    from causalprint.residual.reference import ReferenceModel

    return ReferenceModel.from_pretrained(tiny_reference_dir)


@pytest.fixture(scope="session")
def tiny_zoo_s3(s3_endpoint: str, ray_session: None):
    """The tiny zoo, built once by the real CLI into a bucket on the S3 server; returns its Storage."""
    import boto3

    from causalprint.cli import main
    from causalprint.storage import Storage, StorageConfig

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="zoo-build")
    overrides = ["--set", "storage.root=s3://zoo-build/cp", "--set", f"storage.endpoint_url={s3_endpoint}"]
    assert main(["zoo", "build", "--preset", "tiny", *overrides]) == 0
    return Storage(StorageConfig(root="s3://zoo-build/cp", endpoint_url=s3_endpoint))


@pytest.fixture(scope="session")
def attribution_world(tmp_path_factory: pytest.TempPathFactory, tiny_reference_dir: Path, ray_session: None):
    """The scan tests' attribution world (three synthetic sources, a registered champion), built once for the
    serving and anonymization tests."""
    from scan_world import build_world

    return build_world(tmp_path_factory, tiny_reference_dir)
