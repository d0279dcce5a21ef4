"""Learning-rate schedules: values per epoch, and what a training step then uses."""

from __future__ import annotations

import math

import pytest
import torch

from causalprint.attribution.schedule import epoch_lr, set_lr


def test_constant_keeps_the_base_rate() -> None:
    assert [epoch_lr(0.01, e, 5, "constant") for e in range(5)] == [0.01] * 5


def test_cosine_decays_from_the_base_rate_towards_zero() -> None:
    rates = [epoch_lr(0.01, e, 4, "cosine") for e in range(4)]
    assert rates[0] == 0.01 and rates[2] == pytest.approx(0.005)
    assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] > 0
    assert rates[1] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi / 4)))


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        epoch_lr(0.01, 0, 4, "step")  # type: ignore[arg-type]


def test_set_lr_changes_every_parameter_group() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    set_lr(optimizer, 0.02)
    assert [g["lr"] for g in optimizer.param_groups] == [0.02, 0.02]
