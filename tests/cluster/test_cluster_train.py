"""Training on a local 2-node Ray cluster: Ray Train DDP with 2 workers (CPU, gloo), one on each node, that see
disjoint shards covering the train rows; a worker killed on the second node, after which the run resumes from its
checkpoint in S3; and MLflow in cluster mode: a real ``mlflow server`` (sqlite database, artifacts in S3) on
127.0.0.1 that the job reaches through ``mlflow.tracking_uri``, from the driver and from the workers on both
nodes, for the run and its registration.

The features are synthetic (x = A[source] + B @ content + noise, as in the training tests), written as real
feature parts into the S3 bucket that the job's storage is: a one-worker run on the same rows is the reference the
two-worker model must match.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from local_cluster import LocalCluster, wait_for

from causalprint.attribution.dataset import load_attribution_data
from causalprint.attribution.training.checkpoints import run_root
from causalprint.attribution.training.driver import TrainResult, run_training
from causalprint.data.parts import batch_to_table
from causalprint.jobs import train as train_job
from causalprint.storage import Storage, StorageConfig

pytestmark = pytest.mark.slow

SOURCES = {"real": "real", "sd-a": "diffusion", "gan-a": "gan"}
COLUMNS = {"one_step.dct": 8, "one_step.rgb": 6}
MODEL_NAME = "causalprint-attributor-cluster"


def write_features(storage: Storage, output: str, per_source: tuple[int, int] = (200, 40)) -> None:
    """Two feature parts: every source with ``per_source`` (train, heldout) rows, its own offset in both columns
    and a content term shared by all sources."""
    rng = np.random.default_rng(0)
    dim = sum(COLUMNS.values())
    offsets = {s: 2.5 * rng.normal(size=dim) for s in SOURCES}
    loadings = rng.normal(size=(3, dim))
    rows: dict[str, list] = {k: [] for k in ("uri", "source", "arch", "family", "split", "ok", "reference_id")}
    vectors = []
    for source, family in SOURCES.items():
        for split, count in zip(("train", "heldout"), per_source):
            for i in range(count):
                for key, value in zip(
                    rows, (f"s3://zoo/{source}/{split}/{i:04d}.png", source, source, family, split, True, "ref-1")
                ):
                    rows[key].append(value)
                vectors.append(offsets[source] + rng.normal(size=3) @ loadings + 0.5 * rng.normal(size=dim))
    x = np.asarray(vectors, dtype=np.float32)
    batch = {k: np.asarray(v, dtype=bool if k == "ok" else object) for k, v in rows.items()}
    batch["one_step.dct"], batch["one_step.rgb"] = x[:, :8], x[:, 8:]
    half = len(x) // 2
    for part, cut in enumerate((slice(0, half), slice(half, None))):
        table = batch_to_table({k: v[cut] for k, v in batch.items()})
        storage.write_parquet(f"{storage.resolve(output)}/part-{part:03d}.parquet", table)


@pytest.fixture(scope="module")
def mlflow_server(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``mlflow server`` on 127.0.0.1: runs and registry in a sqlite database, artifacts in the S3 server."""
    import socket

    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="cluster-mlflow")
    folder = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--backend-store-uri=sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination=s3://cluster-mlflow/artifacts",
            "--workers=1",
        ],
        stdout=log,
        stderr=log,
        env=env,
        cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError(
                f"mlflow server exited with {server.returncode}: {(folder / 'server.log').read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 180, "mlflow server answering /health", every=0.5)
        yield {"tracking_uri": url, "s3": s3_endpoint}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def shard_recorder(log_file: Path):
    """An ``on_shard`` hook: each worker appends its epoch, rank, node and shard rows to ``log_file``."""

    def hook(epoch: int, rank: int, rows: Any) -> None:
        import ray

        node = ray.get_runtime_context().get_node_id()
        with open(log_file, "a") as handle:
            handle.write(f"{epoch} {rank} {node} {','.join(map(str, rows.tolist()))}\n")

    return hook


def kill_on_node(marker: Path, head_id: str, at_epoch: int, then: Any, settle_s: float = 10.0):
    """An ``on_shard`` hook: the first worker not on the head to *start* ``at_epoch`` kills its own process (SIGKILL:
    no exception, no clean-up, as a lost worker would be); every other call goes on to ``then``. Before the kill it
    waits ``settle_s``: Ray Train's controller takes in the workers' reports (and registers their checkpoints) by
    polling, and these epochs last under a second, so a kill without the wait found no checkpoint registered and
    the run started from scratch (seen twice: killed right after epoch 2's report, and at the start of epoch 3)."""

    def hook(epoch: int, rank: int, rows: Any) -> None:
        import time

        import ray

        if epoch == at_epoch and ray.get_runtime_context().get_node_id() != head_id and not marker.exists():
            marker.write_text(f"{rank}\n")
            time.sleep(settle_s)
            os.kill(os.getpid(), signal.SIGKILL)
        then(epoch, rank, rows)

    return hook


@dataclass
class ClusterRun:
    storage: Storage
    job: train_job.TrainRegisterJobConfig
    result: TrainResult
    one_worker: TrainResult
    shards: list[tuple[int, int, str, list[int]]]  # (epoch, rank, node, rows) per call
    killed_rank: int
    head_id: str


@pytest.fixture(scope="module")
def cluster_run(
    ray_cluster: LocalCluster, mlflow_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterRun]:
    """One 2-worker run of 3 epochs on the cluster (storage and checkpoints in S3, MLflow on the server) whose
    worker on the second node dies as it starts epoch 3; and a one-worker run of the same recipe."""
    import boto3

    boto3.client("s3", endpoint_url=mlflow_server["s3"], region_name="us-east-1").create_bucket(Bucket="cluster-train")
    storage = Storage(StorageConfig(root="s3://cluster-train/cp", endpoint_url=mlflow_server["s3"]))
    write_features(storage, "features/synth")
    folder = tmp_path_factory.mktemp("cluster-train")
    job = train_job.TrainRegisterJobConfig.model_validate(
        {
            "name": "two-workers",
            "storage": storage.config.model_dump(),
            "ray": {"object_store_mb": 256},
            "mlflow": {"tracking_uri": mlflow_server["tracking_uri"], "experiment": "cluster"},
            "data": {"features": "features/synth", "columns": list(COLUMNS)},
            "model": {"hidden": 32, "fp_dim": 8, "content_dim": 4},
            "train": {"epochs": 3, "batch_size": 16, "lr": 1e-2},
            # One CPU per worker on nodes of one CPU each: one worker per node.
            "scaling": {"num_workers": 2, "cpus_per_worker": 1.0, "max_failures": 1, "keep_checkpoints": None},
            "model_name": MODEL_NAME,
            "gate": {"minimum": {"test_accuracy": 0.8}},
        }
    )
    head_id = ray_cluster.node_id(ray_cluster.head)
    shards_log, marker = folder / "shards.log", folder / "killed"
    previous = os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    try:
        result = run_training(job, on_shard=kill_on_node(marker, head_id, at_epoch=3, then=shard_recorder(shards_log)))
        one = job.model_copy(
            update={"name": "one-worker", "scaling": job.scaling.model_copy(update={"num_workers": 1})}
        )
        one_worker = run_training(one)
        shards = []
        for line in shards_log.read_text().splitlines():
            epoch, rank, node, rows = line.split(" ")
            shards.append((int(epoch), int(rank), node, [int(r) for r in rows.split(",")]))
        yield ClusterRun(storage, job, result, one_worker, shards, int(marker.read_text()), head_id)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_S3_ENDPOINT_URL", None)
        else:
            os.environ["MLFLOW_S3_ENDPOINT_URL"] = previous


def test_two_workers_on_two_nodes_train_on_disjoint_shards_of_the_train_rows(cluster_run: ClusterRun) -> None:
    run = cluster_run
    train_rows = len(load_attribution_data(run.storage, run.job.data).y_train)
    by_epoch: dict[int, dict[int, tuple[str, list[int]]]] = {}
    for epoch, rank, node, rows in run.shards:
        by_epoch.setdefault(epoch, {})[rank] = (node, rows)  # a restarted epoch: the last attempt's shards
    assert sorted(by_epoch) == [1, 2, 3]
    for epoch, ranks in by_epoch.items():
        assert sorted(ranks) == [0, 1]
        (node0, rows0), (node1, rows1) = ranks[0], ranks[1]
        assert node0 != node1, f"epoch {epoch}: both workers ran on node {node0}"
        assert not set(rows0) & set(rows1), f"epoch {epoch}: the shards overlap"
        assert len(rows0) == len(rows1) == train_rows // 2  # equal shards: every rank takes the same steps
        union = set(rows0) | set(rows1)
        assert union <= set(range(train_rows)) and len(union) == train_rows - train_rows % 2
    # Each epoch reshuffles: over the epochs, the shards cover every train row.
    assert set().union(*(set(r) for _, ranks in by_epoch.items() for _, r in ranks.values())) == set(range(train_rows))


def test_two_workers_reach_the_accuracy_of_one(cluster_run: ClusterRun) -> None:
    two, one = cluster_run.result.metrics, cluster_run.one_worker.metrics
    # Three known classes, chance is 1/3; 120 test rows, so one row is 0.008 of accuracy.
    assert two["test_accuracy"] > 0.8 and one["test_accuracy"] > 0.8, (two, one)
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= 0.1, (two, one)


def test_a_worker_killed_on_the_second_node_resumes_from_the_checkpoint(cluster_run: ClusterRun) -> None:
    run = cluster_run
    epochs = [epoch for epoch, rank, _, _ in run.shards if rank == run.killed_rank]
    # Epochs 1 and 2 ran and the worker died as it started epoch 3. The new worker group resumed from the latest
    # checkpoint that Ray Train had registered: epoch 2's, or epoch 1's when the controller had not yet taken in
    # epoch 2's report (then epoch 2 runs again). A start from scratch would be 0.
    resumed = run.result.history[-1]["start_epoch"]
    assert resumed in (1, 2), run.result.history
    assert epochs == [1, 2, *range(resumed + 1, 4)], epochs
    assert [h["start_epoch"] for h in run.result.history] == [0] * resumed + [resumed] * (3 - resumed)
    assert run.result.epochs_completed == 3
    names = {f.uri.rsplit("/", 2)[-2] for f in run.storage.list_files(run_root(run.job, run.storage))}
    assert {"epoch_0001", "epoch_0002", "epoch_0003"} <= names


def test_the_job_registers_through_the_mlflow_server_with_artifacts_in_s3(
    cluster_run: ClusterRun, mlflow_server: dict[str, str]
) -> None:
    import boto3
    import mlflow

    run = cluster_run
    # Every epoch was logged by rank 0, a worker on a cluster node, into the server's run (an epoch run again
    # after the worker was lost is logged again).
    client = mlflow.MlflowClient(mlflow_server["tracking_uri"])
    resumed = run.result.history[-1]["start_epoch"]
    steps = [m.step for m in client.get_metric_history(run.result.mlflow_run_id, "val_accuracy")]
    assert sorted(steps) == [1, 2, *range(resumed + 1, 4)], steps
    # The training job (train, register, gate) again under the same name: the run's checkpoints are complete, so
    # it only calibrates and registers, through the server.
    summary = train_job.run(run.job)
    assert summary["promoted"], summary
    # The version is logged by a registration run, a child of the training run.
    assert client.get_run(summary["run_id"]).data.tags["mlflow.parentRunId"] == run.result.mlflow_run_id
    version = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert summary["model"] == f"models:/{MODEL_NAME}/{version.version}"
    assert client.get_run(version.run_id).info.status == "FINISHED"
    artifacts = client.get_run(version.run_id).info.artifact_uri
    assert artifacts.startswith("s3://cluster-train/cp/mlartifacts/"), artifacts
    bucket, _, prefix = artifacts.removeprefix("s3://").partition("/")
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=mlflow_server["s3"], region_name="us-east-1")
        .list_objects_v2(Bucket=bucket, Prefix=prefix)
        .get("Contents", [])
    ]
    assert any(k.endswith(".safetensors") for k in keys), keys
