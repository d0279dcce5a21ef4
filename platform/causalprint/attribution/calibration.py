"""What turns a trained decoupler into open-set decisions: temperatures, unknown thresholds and class
prototypes, fitted on validation rows, and the JSON + safetensors files that hold them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from causalprint.attribution.dataset import AttributionData
from causalprint.attribution.model import CausalDecoupler
from causalprint.attribution.openset import OpenSetAttributor, Prototypes

__all__ = ["CALIBRATION_NAME", "Calibration", "calibrate"]

CALIBRATION_NAME = "calibration.json"


@dataclass
class Calibration:
    """What turns a trained decoupler into open-set decisions, fitted on validation rows.

    ``temperature``/``threshold`` calibrate the logits path (known-ness = calibrated max probability);
    ``proto_temperature``/``proto_threshold`` the prototype path (known-ness = max cosine similarity to a
    prototype). Prototypes are the class means of the *train* codes, so the validation rows that calibrate their
    similarities are not the rows they were built from. ``proto_class_thresholds`` holds the own thresholds of
    enrolled sources (:mod:`causalprint.attribution.prototype_enrolment`); trained classes share ``proto_threshold``.
    """

    class_names: list[str]
    families: dict[str, str]
    temperature: float
    threshold: float
    proto_temperature: float
    proto_threshold: float
    prototypes: Prototypes
    target_tpr: float
    family_threshold: float
    proto_class_thresholds: dict[str, float] = field(default_factory=dict)

    def attributor(self, source: Literal["logits", "prototypes"] = "logits") -> OpenSetAttributor:
        """An :class:`OpenSetAttributor` set up with this calibration."""
        logits = source == "logits"
        attributor = OpenSetAttributor(
            self.class_names,
            source=source,
            prototypes=None if logits else self.prototypes,
            families=self.families,
            family_threshold=self.family_threshold,
            threshold=self.threshold if logits else self.proto_threshold,
            class_thresholds=None if logits else self.proto_class_thresholds,
        )
        attributor.scaler_.temperature_ = self.temperature if logits else self.proto_temperature
        return attributor

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "class_names": self.class_names,
            "families": self.families,
            "logits": {"temperature": self.temperature, "threshold": self.threshold},
            "prototypes": {
                "temperature": self.proto_temperature,
                "threshold": self.proto_threshold,
                "class_thresholds": self.proto_class_thresholds,
            },
            "target_tpr": self.target_tpr,
            "family_threshold": self.family_threshold,
        }

    def save(self, directory: str | Path) -> None:
        """``calibration.json`` + ``prototypes.safetensors`` + ``prototypes.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CALIBRATION_NAME).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True))
        self.prototypes.save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Calibration:
        directory = Path(directory)
        raw = json.loads((directory / CALIBRATION_NAME).read_text())
        return cls(
            class_names=list(raw["class_names"]),
            families=dict(raw["families"]),
            temperature=float(raw["logits"]["temperature"]),
            threshold=float(raw["logits"]["threshold"]),
            proto_temperature=float(raw["prototypes"]["temperature"]),
            proto_threshold=float(raw["prototypes"]["threshold"]),
            prototypes=Prototypes.load(directory),
            target_tpr=float(raw["target_tpr"]),
            family_threshold=float(raw["family_threshold"]),
            proto_class_thresholds={k: float(v) for k, v in raw["prototypes"]["class_thresholds"].items()},
        )


def calibrate(
    model: CausalDecoupler, data: AttributionData, target_tpr: float = 0.95, family_threshold: float = 0.9
) -> Calibration:
    """Prototypes from the train codes; temperatures and unknown thresholds from the validation rows."""
    names = data.class_names
    mine = np.flatnonzero(data.known_train)  # architecture-only rows have no class, hence no prototype
    # In slices: a boolean index would copy the whole known part of the train matrix (gigabytes on the bench).
    codes = np.concatenate(
        [model.predict_codes(data.x_train[mine[i : i + 8192]]).fp for i in range(0, len(mine), 8192)]
    )
    prototypes = Prototypes().fit(codes, [names[i] for i in data.y_train[mine]])
    val = model.predict_codes(data.x_val)
    families = {n: data.families[n] for n in names}  # known classes only: unknowns have no family to fall back on
    by_logits = OpenSetAttributor(names, families=families).fit(
        data.y_val, logits_val=val.logits, target_tpr=target_tpr
    )
    by_proto = OpenSetAttributor(source="prototypes", prototypes=prototypes, families=families).fit(
        [names[i] for i in data.y_val], codes_val=val.fp, target_tpr=target_tpr
    )
    assert by_logits.threshold_ is not None and by_proto.threshold_ is not None  # fit() sets both thresholds
    return Calibration(
        class_names=list(names),
        families=families,
        temperature=by_logits.scaler_.temperature_,
        threshold=float(by_logits.threshold_),
        proto_temperature=by_proto.scaler_.temperature_,
        proto_threshold=float(by_proto.threshold_),
        prototypes=prototypes,
        target_tpr=target_tpr,
        family_threshold=family_threshold,
    )
