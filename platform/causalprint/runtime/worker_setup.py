"""What every worker process of a local Ray instance runs before any task (Ray's ``worker_process_setup_hook``).

Standard library and Ray only: every worker pays for this module's imports when it starts.
"""

from __future__ import annotations

import logging
import os
import warnings

# Ray Train's placement-group cleaner asks the State API once a second whether the training controller still
# lives. The State API is served by the dashboard, which a local instance runs without, so the cleaner can never
# tell and warns on every try: one line a second for as long as a training runs. Its other warnings (a placement
# group it failed to remove, say) still mean something, and pass.
CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
UNANSWERED_QUERY = "Failed to query Ray Train Controller actor state"


# Pillow warns of a "decompression bomb" above its own pixel limit (about 89 M), on files intake refuses from its
# lower max_pixels anyway: one line per such file on the driver's terminal says nothing the report does not.
BOMB_WARNING = r"Image size \(\d+ pixels\) exceeds limit"


class DropMessages(logging.Filter):
    """Drops the records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def quiet_ray_noise() -> None:
    """Drop the cleaner's unanswerable-query warning and Pillow's bomb warning, and name the worker's own
    instance in ``RAY_ADDRESS``: with
    two local instances on one machine (a build running beside a test, say) the State API client cannot tell
    which is meant, and the cleaner's thread dies with a traceback."""
    import ray

    warnings.filterwarnings("ignore", message=BOMB_WARNING)
    cleaner = logging.getLogger(CLEANER_LOGGER)
    if not any(isinstance(f, DropMessages) for f in cleaner.filters):
        cleaner.addFilter(DropMessages(UNANSWERED_QUERY))
    if not os.environ.get("RAY_ADDRESS"):  # ensure_ray treats an empty one as unset, and so does the client
        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
