"""Learning-rate schedules of the decoupler's training, as functions of the epoch."""

from __future__ import annotations

import math
from typing import Literal

import torch

Schedule = Literal["constant", "cosine"]


def epoch_lr(base: float, epoch: int, epochs: int, schedule: Schedule) -> float:
    """The learning rate of epoch ``epoch`` (0-based) of ``epochs``: ``base`` throughout, or a cosine decay from
    ``base`` towards 0. A function of the epoch and the run's length only, so a run resumed from a checkpoint
    follows the same schedule as one that never stopped (a cosine run's length is therefore fixed)."""
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"unknown learning-rate schedule {schedule!r} (constant, cosine)")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
