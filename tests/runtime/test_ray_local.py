"""The local Ray instance: what its worker processes set up before running a task."""

from __future__ import annotations

import logging
import os

from causalprint.runtime.worker_setup import QUIET_LOGGERS


def test_workers_silence_the_placement_group_cleaner_and_know_their_instance(ray_session) -> None:
    import ray

    @ray.remote(num_cpus=0)
    def setup() -> tuple[list[int], str | None]:
        return [logging.getLogger(n).getEffectiveLevel() for n in QUIET_LOGGERS], os.environ.get("RAY_ADDRESS")

    # Set in the worker by the setup hook before the task ran.
    levels, address = ray.get(setup.remote())
    assert QUIET_LOGGERS[0].endswith("placement_group_cleaner") and levels == [logging.ERROR] * len(QUIET_LOGGERS)
    assert address == ray.get_runtime_context().gcs_address
