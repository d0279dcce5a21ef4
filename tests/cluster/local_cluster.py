"""The cluster tests' local 2-node Ray cluster (:mod:`causalprint.runtime.local_cluster`), and the small helpers
that they share (polling, hooks that record which node ran them)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from causalprint.runtime.local_cluster import LocalCluster
from causalprint.runtime.local_cluster import start_cluster as _start_cluster

__all__ = ["SLOT", "LocalCluster", "node_recorder", "recorded_nodes", "start_cluster", "wait_for"]


SLOT = "slot"  # one per node: scan actors that ask for one get a node each


def start_cluster() -> LocalCluster:
    """The tests' cluster: a head (1 CPU) and a second node (1 CPU, resource ``second``), each with one
    :data:`SLOT`, joined as the driver."""
    return _start_cluster(
        workers=1,
        head_cpus=1.0,
        head_resources={SLOT: 1},
        cpus_per_worker=1.0,
        worker_resources={"second": 1, SLOT: 1},
    )


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
