"""The cluster tests' fixture: a local 2-node Ray cluster (:mod:`local_cluster`), joined by the test process as
a driver, the way a job joins a real cluster (``RAY_ADDRESS``).

One cluster per test module. A local Ray started earlier in the session (``ray_session``) is stopped while the
cluster runs and started again after it, so that the tests before and after see the Ray they expect.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_cluster import LocalCluster, start_cluster


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    """A 2-node cluster for the module; the driver (this process) is joined to it while the module runs."""
    import ray

    from causalprint.runtime.ray_local import ensure_ray

    was_running = ray.is_initialized()
    if was_running:
        ray.shutdown()
    local = start_cluster()
    try:
        yield local
    finally:
        ray.shutdown()
        local.cluster.shutdown()
        if was_running:
            ensure_ray()  # the session's local Ray, for the tests after this module
