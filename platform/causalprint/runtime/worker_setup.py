"""What every worker process of a local Ray instance runs before any task (Ray's ``worker_process_setup_hook``).

Standard library and Ray only: every worker pays for this module's imports when it starts.
"""

from __future__ import annotations

import logging
import os

# Ray Train's placement-group cleaner asks the State API once a second whether the training controller still
# lives. The State API is served by the dashboard, which a local instance runs without, so the cleaner can never
# tell and warns on every try: one line a second for as long as a training runs.
QUIET_LOGGERS = ("ray.train.v2._internal.execution.controller.placement_group_cleaner",)


def quiet_ray_noise() -> None:
    """Raise the loggers of ``QUIET_LOGGERS`` to ERROR: their warnings say nothing a user can act on. And name
    the worker's own instance in ``RAY_ADDRESS``: with two local instances on one machine (a build running beside
    a test, say) the State API client cannot tell which is meant, and the cleaner's thread dies with a traceback."""
    import ray

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
