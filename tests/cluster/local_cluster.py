"""A local multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``): a head and worker nodes, each
its own raylet and object store as on separate machines, that a test can add and kill; and the small helpers
that the cluster tests share (polling, hooks that record which node ran them)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OBJECT_STORE = 100 * 1024**2
# Detect a lost node within about a second and a half, not Ray's default of about half a minute.
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
}


@dataclass
class LocalCluster:
    """The running cluster: its address (``RAY_ADDRESS`` for a job), the head and the worker nodes."""

    cluster: Any  # ray.cluster_utils.Cluster
    head: Any  # ray._private.node.Node
    workers: list[Any] = field(default_factory=list)

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def node_id(self, node: Any) -> str:
        return str(node.node_id)

    def add_worker(self) -> Any:
        """Start one more worker node (1 CPU, a small object store) and wait until it has joined."""
        node = self.cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE, resources={"second": 1})
        self.cluster.wait_for_nodes()
        self.workers.append(node)
        return node

    def kill_worker(self, node: Any) -> None:
        """Kill a worker node at once (its raylet, object store and worker processes), as a crash would."""
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def alive_nodes(self) -> list[str]:
        import ray

        return [n["NodeID"] for n in ray.nodes() if n["Alive"]]


def start_cluster(attempts: int = 2) -> LocalCluster:
    """Start a head (1 CPU) and a second node (1 CPU) and join them as this process's driver.

    A node that has not registered within 30 s fails Ray's start-up (a fixed limit in ``ray._private.node``),
    which a machine under heavy load can miss: the whole cluster is then started again, ``attempts`` times in all."""
    for attempt in range(attempts):
        try:
            return _start_cluster()
        except Exception:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_cluster() -> LocalCluster:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={
            "num_cpus": 1,
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": False,
            "_system_config": SYSTEM_CONFIG,
        },
    )
    local = LocalCluster(cluster, cluster.head_node)
    try:
        local.add_worker()
        ray.init(address=cluster.address, log_to_driver=False)
    except BaseException:
        cluster.shutdown()
        raise
    return local


def wait_for(condition: Callable[[], Any], seconds: float, what: str, every: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {seconds} s")


def node_recorder(log_file: Path, delay_s: float = 0.0) -> Callable[..., None]:
    """A picklable hook (a scan's ``on_part``, a training's ``on_epoch_end``): appends the id of the node it runs
    on to ``log_file``, then waits ``delay_s`` (so that a fault can land in the middle of the job)."""

    def hook(*_: Any) -> None:
        import ray

        with open(log_file, "a") as handle:
            handle.write(f"{ray.get_runtime_context().get_node_id()} {os.getpid()}\n")
        if delay_s:
            time.sleep(delay_s)

    return hook


def recorded_nodes(log_file: Path) -> list[str]:
    return [line.split()[0] for line in log_file.read_text().splitlines()] if log_file.exists() else []
