"""The robustness conditions: one clean condition, unique names."""

from __future__ import annotations

import pytest

from causalprint.evaluation.conditions import Condition, default_conditions
from causalprint.evaluation.robustness import RobustnessConfig


def test_defaults_are_clean_plus_the_seven_perturbations() -> None:
    names = [c.name for c in RobustnessConfig().conditions]
    assert names == ["clean", "jpeg95", "jpeg75", "jpeg50", "resize0.5", "crop0.9", "blur1", "noise2"]


@pytest.mark.parametrize(
    "conditions, message",
    [
        ([c for c in default_conditions() if c.name != "clean"], "exactly one without perturbations"),
        ([*default_conditions(), Condition(name="jpeg75")], "repeat"),
        ([Condition(name="plain"), *default_conditions()[1:]], "exactly one without perturbations"),
    ],
)
def test_bad_condition_lists_are_refused(conditions: list[Condition], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RobustnessConfig(conditions=conditions)
