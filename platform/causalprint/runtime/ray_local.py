"""Start or join Ray with settings that suit a small machine as well as a cluster."""

from __future__ import annotations

import logging
import os

from pydantic import Field

from causalprint.config import StrictModel
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
        object_store_memory=config.object_store_mb * 1024**2,
        include_dashboard=False,
        log_to_driver=True,
        runtime_env={"env_vars": {k: os.environ[k] for k in _DEFAULT_ENV},
                     "worker_process_setup_hook": f"{quiet_ray_noise.__module__}.{quiet_ray_noise.__name__}"},
    )


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def gpu_count() -> int:
    """GPUs visible to the Ray cluster (0 on a CPU-only machine)."""
    import ray

    return int(ray.cluster_resources().get("GPU", 0))
