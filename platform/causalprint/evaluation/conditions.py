"""The robustness conditions: named perturbations applied to every class of the test split."""

from __future__ import annotations

from pydantic import Field

from causalprint.config import StrictModel
from causalprint.perturbations import PerturbationSpec

CLEAN = "clean"


class Condition(StrictModel):
    """A test condition: ``perturb`` is applied to every test image (empty: the clean images)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    perturb: list[PerturbationSpec] = Field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.perturb


def _one(name: str, kind: str, **options: float) -> Condition:
    return Condition(name=name, perturb=[PerturbationSpec(name=kind, options=options)])


def default_conditions() -> list[Condition]:
    """The issue's conditions: clean, JPEG 95/75/50, resize 0.5x and back, 90 % centre crop, blur sigma 1,
    noise sigma 2/255."""
    return [
        Condition(name=CLEAN),
        _one("jpeg95", "jpeg", quality=95),
        _one("jpeg75", "jpeg", quality=75),
        _one("jpeg50", "jpeg", quality=50),
        _one("resize0.5", "resize", scale=0.5),
        _one("crop0.9", "center_crop", fraction=0.9),
        _one("blur1", "blur", sigma=1.0),
        _one("noise2", "noise", sigma=2.0),
    ]
