"""A multi-node Ray cluster on one machine (``ray.cluster_utils.Cluster``): a head and worker nodes, each its own
raylet and object store as on separate machines, that a job or a test can grow, shrink and join as a driver.

It is what the cluster tests and the node-scaling benchmark run on; a real cluster is started with ``ray start``
or KubeRay (``docs/operations.md``) and joined the same way, through its address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    cpus_per_worker: float = 1.0
    worker_resources: dict[str, float] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def node_id(self, node: Any) -> str:
        return str(node.node_id)

    def add_worker(self) -> Any:
        """Start one more worker node and wait until it has joined."""
        node = self.cluster.add_node(
            num_cpus=self.cpus_per_worker, object_store_memory=OBJECT_STORE, resources=dict(self.worker_resources)
        )
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

    def shutdown(self) -> None:
        self.cluster.shutdown()


def start_cluster(
    workers: int = 1,
    *,
    head_cpus: float = 1.0,
    head_resources: dict[str, float] | None = None,
    cpus_per_worker: float = 1.0,
    worker_resources: dict[str, float] | None = None,
    connect: bool = True,
    attempts: int = 2,
) -> LocalCluster:
    """Start a head and ``workers`` worker nodes; with ``connect``, join them as this process's driver.

    A node that has not registered within 30 s fails Ray's start-up (a fixed limit in ``ray._private.node``),
    which a machine under heavy load can miss: the whole cluster is then started again, ``attempts`` times in
    all."""
    for attempt in range(attempts):
        try:
            return _start(workers, head_cpus, head_resources or {}, cpus_per_worker, worker_resources or {}, connect)
        except Exception:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start(
    workers: int,
    head_cpus: float,
    head_resources: dict[str, float],
    cpus_per_worker: float,
    resources: dict[str, float],
    connect: bool,
) -> LocalCluster:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={
            "num_cpus": head_cpus,
            "resources": dict(head_resources),
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": False,
            "_system_config": SYSTEM_CONFIG,
        },
    )
    local = LocalCluster(cluster, cluster.head_node, cpus_per_worker=cpus_per_worker, worker_resources=resources)
    try:
        for _ in range(workers):
            local.add_worker()
        if connect:
            ray.init(address=cluster.address, log_to_driver=False)
    except BaseException:
        cluster.shutdown()
        raise
    return local
