"""Run the feature tests on one CPU thread: their models are tiny, so threads only add start-up and, on a busy
machine, stalls (the SSL training test takes 0.6 s on one thread and over 20 s on two oversubscribed ones)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
