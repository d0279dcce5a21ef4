"""One view over every attributor under evaluation: ours (a registered decoupler) and the baselines.

A method reads named vector columns and returns class probabilities and a known-ness score (higher: more
likely one of its training sources), over its own ``class_names``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from causalprint.attribution.openset import Attribution
from causalprint.evaluation.metrics import pooled_architecture
from causalprint.tracking.artifacts import LoadedAttributor


class Method(Protocol):
    name: str

    @property
    def columns(self) -> tuple[str, ...]: ...

    @property
    def class_names(self) -> list[str]: ...

    def predict_proba(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray: ...

    def known_score(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray: ...

    def predict_architecture(self, inputs: Mapping[str, np.ndarray], arch_of: Mapping[str, str]) -> np.ndarray: ...


@dataclass
class OursMethod:
    """The registered causal decoupler: input is its required columns, concatenated in order. ``source`` picks
    the decision path: calibrated logits, or cosine similarity to the class prototypes in fingerprint space
    (the path that enrolled sources join)."""

    attributor: LoadedAttributor
    source: Literal["logits", "prototypes"] = "prototypes"
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"causalprint (ours, {self.source})"

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.attributor.requirements["columns"])

    @property
    def class_names(self) -> list[str]:
        return list(self.attributor.calibration.class_names)

    def _x(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([inputs[c] for c in self.columns], axis=1)

    def codes(self, inputs: Mapping[str, np.ndarray]) -> Any:
        return self.attributor.model.predict_codes(self._x(inputs))

    def predict_proba(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        codes = self.codes(inputs)
        return self.attributor.calibration.attributor(self.source).probabilities(codes=codes.fp, logits=codes.logits)

    def known_score(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        codes = self.codes(inputs)
        return self.attributor.calibration.attributor(self.source).scores(codes=codes.fp, logits=codes.logits)

    def decisions(self, inputs: Mapping[str, np.ndarray]) -> list[Attribution]:
        """The open-set decisions a scan gives on this path (the generated head's revision included, if any)."""
        return self.attributor.predict(self._x(inputs), self.source)

    def operating_point(self) -> dict[str, float]:
        """The thresholds the decisions use: the unknown threshold of this path, the share of known validation
        rows it accepts, the family fallback's, and the generated head's (when the model has one)."""
        cal = self.attributor.calibration
        point = {
            "threshold": cal.proto_threshold if self.source == "prototypes" else cal.threshold,
            "target_tpr": cal.target_tpr,
            "family_threshold": cal.family_threshold,
        }
        if self.attributor.generated is not None:
            point["generated_threshold"] = self.attributor.generated.threshold
        return point

    def predict_architecture(self, inputs: Mapping[str, np.ndarray], arch_of: Mapping[str, str]) -> np.ndarray:
        """The model's own answer, the one a scan gives (:meth:`LoadedAttributor.architectures_of`): its
        architecture head, or without one its calibrated class probabilities pooled per architecture. A model
        saved without class architectures pools the same probabilities by the evaluation's ``arch_of``."""
        codes = self.codes(inputs)
        names = self.attributor.architectures_of(codes)
        if names is not None:
            return names
        probs = self.attributor.calibration.attributor("logits").probabilities(logits=codes.logits)
        return pooled_architecture(probs, self.class_names, arch_of)


@dataclass
class BaselineMethod:
    """A fitted baseline (``causalprint.baselines``) with the class names it was trained on."""

    baseline: Any
    class_names: list[str]
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.baseline.name

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.baseline.columns)

    def predict_proba(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.baseline.predict_proba(inputs)

    def known_score(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.baseline.known_score(inputs)

    def predict_architecture(self, inputs: Mapping[str, np.ndarray], arch_of: Mapping[str, str]) -> np.ndarray:
        """Pooled class probabilities: a baseline is trained on sources and has no architecture head."""
        return pooled_architecture(self.predict_proba(inputs), self.class_names, arch_of)
