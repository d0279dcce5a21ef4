"""The local Ray instance: what its worker processes set up before running a task."""

from __future__ import annotations

import logging
import os

import pytest

from causalprint.runtime.worker_setup import CLEANER_LOGGER, UNANSWERED_QUERY


@pytest.mark.skipif(bool(os.environ.get("RAY_ADDRESS")), reason="a joined cluster installs no worker hook")
def test_workers_drop_only_the_cleaners_unanswerable_query_and_know_their_instance(ray_session) -> None:
    import ray

    @ray.remote(num_cpus=0)
    def setup() -> tuple[list[bool], str | None]:
        logger = logging.getLogger(CLEANER_LOGGER)
        messages = [
            f"{UNANSWERED_QUERY}. State API may be temporarily unavailable. Continuing to monitor.",
            "Failed to clean up placement group: boom",
        ]
        passed = [
            bool(logger.filter(logger.makeRecord(CLEANER_LOGGER, logging.WARNING, __file__, 1, m, (), None)))
            for m in messages
        ]
        return passed, os.environ.get("RAY_ADDRESS")

    # Set in the worker by the setup hook before the task ran: the query warning is dropped, the other passes.
    passed, address = ray.get(setup.remote())
    assert passed == [False, True]
    assert address == ray.get_runtime_context().gcs_address
