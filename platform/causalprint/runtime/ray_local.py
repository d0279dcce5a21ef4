"""Start or join Ray with settings that suit a small machine as well as a cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

from pydantic import Field

from causalprint.config import StrictModel
from causalprint.logging_setup import adopt_logger
from causalprint.runtime.worker_setup import quiet_ray_noise

log = logging.getLogger(__name__)


class RayConfig(StrictModel):
    """Where Ray runs: ``address`` joins a cluster (or use ``RAY_ADDRESS``); otherwise a local instance."""

    address: str | None = None
    object_store_mb: int = Field(default=2048, ge=128)


_DEFAULT_ENV = {
    # Ray 2.60 turns token auth on by default; the embedded stack is local-only.
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def ensure_ray(config: RayConfig | None = None) -> None:
    """Initialise Ray once: join ``config.address`` (or ``RAY_ADDRESS``) when given, else start locally.

    Only a local instance installs the worker hook of :mod:`causalprint.runtime.worker_setup`: a cluster's nodes
    may not have causalprint installed where the hook would run, and a cluster started with ``ray start`` serves
    the State API that the hook's quieted warning is about."""
    import ray

    adopt_logger("ray")  # Ray's logger prints to the terminal by itself: route it like any third party's
    config = config or RayConfig()
    address = config.address
    if ray.is_initialized():
        return
    for key, value in _DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=True)
        return
    ray.init(
        # "local": always a new instance of our own; without it Ray joins whatever cluster this machine last
        # started (another job's, a test session's) and refuses our object-store size.
        address="local",
        object_store_memory=config.object_store_mb * 1024**2,
        include_dashboard=False,
        log_to_driver=True,
        runtime_env={
            "env_vars": {k: os.environ[k] for k in _DEFAULT_ENV},
            "worker_process_setup_hook": f"{quiet_ray_noise.__module__}.{quiet_ray_noise.__name__}",
        },
    )


def _ray_running() -> bool:
    ray = sys.modules.get("ray")  # not imported: not running, and no reason to import it
    return bool(ray is not None and ray.is_initialized())


@contextlib.contextmanager
def ray_owner() -> Iterator[None]:
    """On Ctrl-C inside the block, stop a Ray that was started (or joined) inside it, so that no Ray process
    outlives the command; a Ray running before the block is left alone. A second Ctrl-C cannot cut the stop."""
    before = _ray_running()
    try:
        yield
    except KeyboardInterrupt:
        if not before and _ray_running():
            main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                shutdown_ray()
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous)
        raise


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def gpu_count() -> int:
    """GPUs visible to the Ray cluster (0 on a CPU-only machine)."""
    import ray

    return int(ray.cluster_resources().get("GPU", 0))
