"""The compose stack's storage and registry services, started natively the way compose.yaml describes them (no
container runtime runs here): its `s3` command, its `s3-init` command and its `mlflow` command with their
environment, only moved to free ports on 127.0.0.1 and with sqlite in place of the PostgreSQL service. A client
then registers a model through the tracking server, and its artifacts land in the S3 store's bucket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def _local(words: list[str], replace: dict[str, str]) -> list[str]:
    """A compose command with some of its words (or ``--flag=`` values) replaced."""
    out = []
    for word in words:
        flag = word.split("=", 1)[0] + "=" if word.startswith("--") and "=" in word else None
        out.append(replace.get(word, f"{flag}{replace[flag]}" if flag in replace else word))
    return out


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    services = yaml.safe_load((REPO / "infra" / "compose" / "compose.yaml").read_text())["services"]
    s3_port, mlflow_port = _free_port(), _free_port()
    s3_url = f"http://127.0.0.1:{s3_port}"
    env = {
        **os.environ,
        **services["mlflow"]["environment"],
        "AWS_ENDPOINT_URL": s3_url,
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
    }
    started: list[subprocess.Popen] = []
    log = (tmp_path / "services.log").open("w")
    try:
        s3 = _local(services["s3"]["command"], {"0.0.0.0": "127.0.0.1", "9000": str(s3_port)})
        started.append(subprocess.Popen([str(BIN / s3[0]), *s3[1:]], stdout=log, stderr=log, env=env))
        _wait(f"{s3_url}/moto-api/", started[-1])
        init = services["s3-init"]["command"]
        subprocess.run([sys.executable, *init[1:]], env=env, check=True, timeout=60, capture_output=True)
        mlflow = _local(
            services["mlflow"]["command"],
            {
                "--host=": "127.0.0.1",
                "--port=": str(mlflow_port),
                "--backend-store-uri=": f"sqlite:///{tmp_path / 'mlflow.db'}",
            },
        )
        started.append(
            subprocess.Popen(
                [str(BIN / mlflow[0]), *mlflow[1:], "--workers", "1"], stdout=log, stderr=log, env=env, cwd=tmp_path
            )
        )
        _wait(f"http://127.0.0.1:{mlflow_port}/health", started[-1], seconds=120)
        yield {"tracking_uri": f"http://127.0.0.1:{mlflow_port}", "s3": s3_url}
    finally:
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def test_a_model_registers_through_the_stacks_mlflow_into_its_s3_store(stack: dict[str, str], tmp_path: Path) -> None:
    import boto3
    import mlflow

    client = mlflow.MlflowClient(stack["tracking_uri"])
    experiment = client.create_experiment("stack-check")  # artifacts: the server's --artifacts-destination
    run = client.create_run(experiment)
    weights = tmp_path / "weights.json"
    weights.write_text('{"w": [1, 2, 3]}')
    client.log_artifact(run.info.run_id, str(weights), "attributor")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("causalprint-attributor-stack")
    version = client.create_model_version(
        "causalprint-attributor-stack", f"runs:/{run.info.run_id}/attributor", run.info.run_id
    )
    client.set_registered_model_alias("causalprint-attributor-stack", "champion", version.version)
    assert client.get_registered_model("causalprint-attributor-stack").aliases == {"champion": version.version}
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=stack["s3"]).list_objects_v2(Bucket="causalprint").get("Contents", [])
    ]
    assert any(k.startswith("mlflow-artifacts/") and k.endswith("attributor/weights.json") for k in keys), keys
