"""Applying perturbations to images and to Ray Data batches, reproducibly.

A list of specs is a *mix*: each image gets one of them, chosen by a hash of its URI (a one-element list applies
to every image). The random stream of an image (noise) is seeded from the same hash, so a perturbed collection
is the same whatever the batch, the worker or the order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from causalprint.config import StrictModel
from causalprint.perturbations.base import Perturbation
from causalprint.perturbations.registry import create_perturbation


class PerturbationSpec(StrictModel):
    """One perturbation by registry name, e.g. ``{name: jpeg, options: {quality: 75}}``."""

    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    def build(self) -> Perturbation:
        return create_perturbation(self.name, **self.options)

    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name}({opts})" if opts else self.name


def _key(uri: str) -> int:
    # The leading NUL is part of the key of every stored perturbed output: dropping it would change their picks.
    return int.from_bytes(hashlib.sha256(f"\0{uri}".encode()).digest()[:8], "little")


def perturb_image(
    image: np.ndarray, uri: str, specs: Sequence[PerturbationSpec], built: Sequence[Perturbation] | None = None
) -> tuple[np.ndarray, str]:
    """The perturbed image and the label of the spec that was applied."""
    if not specs:
        raise ValueError("perturb_image needs at least one perturbation spec")
    key = _key(uri)
    index = key % len(specs)
    perturbation = built[index] if built is not None else specs[index].build()
    out = perturbation(image, np.random.default_rng(key))
    if out.shape != image.shape or out.dtype != np.uint8:
        raise RuntimeError(f"perturbation {specs[index].label()} returned {out.dtype} {out.shape} for {image.shape}")
    return out, specs[index].label()


def perturb_batch(batch: dict[str, np.ndarray], specs: Sequence[PerturbationSpec]) -> dict[str, np.ndarray]:
    """Perturb the ``image`` column of the ``ok`` rows of a Ray Data batch; adds a ``perturbation`` column
    (empty for error rows)."""
    built = [s.build() for s in specs]
    out = dict(batch)
    images = np.array(batch["image"], copy=True)
    labels = [""] * len(images)
    for i, (ok, uri) in enumerate(zip(batch["ok"], batch["uri"])):
        if ok:
            images[i], labels[i] = perturb_image(images[i], str(uri), specs, built)
    out["image"] = images
    out["perturbation"] = np.array(labels, dtype=object)
    return out
