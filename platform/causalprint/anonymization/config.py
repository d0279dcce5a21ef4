"""Typed options of one anonymization."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from causalprint.config import StrictModel

REAL: Final = "real"
AWAY: Final = "away"


class AnonymizationError(ValueError):
    """The request cannot be met by this model (no real class, an unknown target); the message says why."""


class AnonymizeOptions(StrictModel):
    """How far and how long the pixels may move. ``max_change`` bounds every pixel (L-infinity, in uint8 levels),
    which also floors the PSNR: a change of at most ``m`` levels keeps PSNR >= 20 log10(255 / m) dB (36.1 dB at
    4). ``target`` is the counterfactual fingerprint: ``real`` (the real class's prototype), ``away`` (away from
    the named source, for a model without a real class), or a source name (forgery: the evaluation's, never an
    endpoint's)."""

    target: str = Field(default=REAL, min_length=1, max_length=128)
    max_change: float = Field(default=4.0, gt=0, le=64, description="largest change of a pixel, in uint8 levels")
    steps: int = Field(default=60, ge=1, le=2000, description="optimisation steps at most")
    step_size: float = Field(default=0.5, gt=0, le=16, description="signed-gradient step, in uint8 levels")
    noise_draws: int = Field(
        default=2,
        ge=1,
        le=16,
        description="residual noise draws averaged per step, so the change holds for the noise the scan will draw",
    )
    check_every: int = Field(default=5, ge=1, le=100, description="steps between checks through the scan's path")
    loss: Literal["cosine", "probability"] = Field(
        default="probability",
        description="cosine: raise the code's cosine to the target prototype, lower it to the "
        "named source's; probability: the same on the calibrated prototype-path probabilities (log p(target) - "
        "log p(source), softmax of the cosines to every prototype over the calibrated temperature)",
    )
    feature_weight: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="weight of the counterfactual feature term: the mean squared distance, in the attributor's "
        "standardised feature units, between the image's residual features and the decoder's counterfactual "
        "(its fingerprint code swapped for the target's prototype, its content code kept). It moves the features "
        "that every attributor of this feature path reads, not only this model's code, so the change carries over "
        "to attributors the optimiser never saw. 0: the code term alone",
    )
    settle: int = Field(
        default=3,
        ge=0,
        le=20,
        description="checks to go on after the named source is first no longer named, so that the image lands "
        "inside the target's region rather than on its boundary (a change that only crosses this model's "
        "boundary rarely carries over to another attributor); the result is the last check that still succeeded",
    )
    psnr_floor: float | None = Field(
        default=None,
        ge=20,
        le=80,
        description="a second budget, in dB: after each step the change is scaled "
        "down to the RMS this PSNR allows (before quantisation), so a larger max_change can be spent where the "
        "fingerprint sits while the mean quality holds. None: only the L-infinity bound",
    )
    seed: int = Field(
        default=0, ge=0, description="the noise draws' seed: the same image and seed give the same result"
    )
