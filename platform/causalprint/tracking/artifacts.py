"""A registered version's files: the attributor folder (what :class:`LoadedAttributor` loads) and the report for
people. A version's run holds::

    attributor/                       all JSON + safetensors (never a pickle)
        model/                        CausalDecoupler.save_pretrained: config.json, model.safetensors, extras.json
        calibration.json              temperatures, unknown thresholds, label map, family map
        prototypes.safetensors/.json  class prototypes of the fingerprint codes
        requirements.json             reference_id and input columns the vectors must come from
        metrics.json                  the evaluation the gate reads
        generated.json/.safetensors   the generated-vs-real head and its threshold (only when trained with one)
    report/                           confusion_matrix.png, fingerprints.png, fdr.md, fdr.json
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from causalprint.attribution.calibration import Calibration
from causalprint.attribution.generated import GeneratedHead, answer_generated
from causalprint.attribution.model import CausalDecoupler, Codes
from causalprint.attribution.openset import Attribution
from causalprint.attribution.training.checkpoints import MODEL_DIR
from causalprint.attribution.training.driver import TrainResult
from causalprint.evaluation.separability import fisher_discriminant_ratio
from causalprint.plots import confusion_matrix_png, fingerprint_plot_png

__all__ = [
    "ARTIFACT_PATH",
    "fdr_table",
    "format_fdr",
    "LoadedAttributor",
    "METRICS_NAME",
    "REPORT_PATH",
    "REQUIREMENTS_NAME",
    "save_attributor",
    "write_report",
]

ARTIFACT_PATH = "attributor"
REPORT_PATH = "report"
REQUIREMENTS_NAME = "requirements.json"
METRICS_NAME = "metrics.json"


def save_attributor(result: TrainResult, directory: str | Path) -> Path:
    """Write the folder that :meth:`LoadedAttributor.from_folder` reads (layout in the module docstring)."""
    return LoadedAttributor(
        model=result.model,
        calibration=result.calibration,
        requirements=result.requirements,
        metrics=result.metrics,
        generated=result.generated,
    ).save(directory)


@dataclass
class LoadedAttributor:
    """A decoupler with its calibration: raw vectors (the ``requirements``' columns, concatenated) in,
    open-set decisions out. ``generated`` is the generated-vs-real head, when the model was trained with one: its
    decisions then never answer an image the head calls generated with the real class (:func:`answer_generated`)."""

    model: CausalDecoupler
    calibration: Calibration
    requirements: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    generated: GeneratedHead | None = None

    @classmethod
    def from_folder(cls, directory: str | Path) -> LoadedAttributor:
        directory = Path(directory)
        return cls(
            model=CausalDecoupler.from_pretrained(directory / MODEL_DIR),
            calibration=Calibration.load(directory),
            requirements=json.loads((directory / REQUIREMENTS_NAME).read_text()),
            metrics=json.loads((directory / METRICS_NAME).read_text()),
            generated=GeneratedHead.load(directory),
        )

    def save(self, directory: str | Path) -> Path:
        """Write the folder that :meth:`from_folder` reads (layout in the module docstring)."""
        directory = Path(directory)
        self.model.save_pretrained(directory / MODEL_DIR)
        self.calibration.save(directory)
        (directory / REQUIREMENTS_NAME).write_text(json.dumps(self.requirements, indent=2, sort_keys=True))
        (directory / METRICS_NAME).write_text(json.dumps(self.metrics, indent=2, sort_keys=True))
        if self.generated is not None:
            self.generated.save(directory)
        return directory

    def codes(self, X: np.ndarray) -> Codes:
        """The model's codes of raw vectors ``X`` ``[N, D]``, with the generated head's scores when it has one."""
        codes = self.model.predict_codes(X)
        return codes if self.generated is None else replace(codes, generated=self.generated.score(X))

    def revise(
        self,
        decisions: list[Attribution],
        probabilities: np.ndarray,
        generated: np.ndarray | None,
        names: Sequence[str],
    ) -> list[Attribution]:
        """``decisions`` (over the classes ``names``) revised by the generated head's ``generated`` scores
        (:func:`answer_generated`); unchanged without a head or scores."""
        if self.generated is None or generated is None:
            return decisions
        families = self.calibration.families
        return answer_generated(
            decisions,
            probabilities,
            names,
            families,
            generated,
            self.generated.threshold,
            self.calibration.family_threshold,
        )

    def check_inputs(self, reference_id: str, columns: Sequence[str]) -> None:
        """Refuse vectors from another reference model or other feature columns than the model was trained on."""
        want_ref, want_cols = self.requirements["reference_id"], list(self.requirements["columns"])
        if reference_id != want_ref or list(columns) != want_cols:
            raise ValueError(
                f"this attributor needs vectors of reference {want_ref!r}, columns {want_cols}; "
                f"got reference {reference_id!r}, columns {list(columns)}"
            )

    def probabilities(self, X: np.ndarray, source: Literal["logits", "prototypes"] = "logits") -> np.ndarray:
        """Calibrated class probabilities ``[N, K]`` (columns: ``calibration.class_names``)."""
        codes = self.model.predict_codes(X)
        return self.calibration.attributor(source).probabilities(codes=codes.fp, logits=codes.logits)

    def predict(self, X: np.ndarray, source: Literal["logits", "prototypes"] = "logits") -> list[Attribution]:
        """One open-set decision per row of raw vectors ``X`` ``[N, D]`` (revised by the generated head, if any)."""
        codes = self.codes(X)
        decider = self.calibration.attributor(source)
        probabilities = decider.probabilities(codes=codes.fp, logits=codes.logits)
        decisions = decider.predict(codes=codes.fp, logits=codes.logits)
        names = [str(n) for n in decider.prototypes.labels_] if decider.prototypes is not None else None
        return self.revise(decisions, probabilities, codes.generated, names or self.calibration.class_names)

    def architectures_of(self, codes: Codes) -> np.ndarray | None:
        """Each row's most likely architecture (:meth:`CausalDecoupler.architectures_of`), its class logits at
        the logits path's calibrated temperature whatever the decision path (the prototype path's classes may
        include enrolled sources, whose architecture the model does not know); None when the model records no
        class architectures. The evaluation asks here, and so does the scan for the rows its decision leaves
        unknown (a row that names a source names that source's architecture)."""
        return self.model.architectures_of(codes, temperature=self.calibration.temperature)


def fdr_table(result: TrainResult) -> list[dict[str, Any]]:
    """Fisher discriminant ratio of the known test rows by source: each input space (standardised with the train
    statistics), their concatenation, and the codes ``z_fp`` (should be high) and ``z_c`` (should be low)."""
    data = result.data
    x, y = (data.x_test, data.y_test) if len(data.y_test) else (data.x_val, data.y_val)
    mean, std = data.x_train.mean(0), np.maximum(data.x_train.std(0), 1e-6)
    spaces = {**data.column_slices(), "input (all columns)": slice(0, data.input_dim)}
    rows = [
        {"space": name, "dim": s.stop - s.start, "fdr": fisher_discriminant_ratio(((x - mean) / std)[:, s], y)}
        for name, s in spaces.items()
    ]
    codes = result.model.predict_codes(x)
    rows.append(
        {"space": "z_fp (fingerprint code)", "dim": codes.fp.shape[1], "fdr": fisher_discriminant_ratio(codes.fp, y)}
    )
    rows.append(
        {
            "space": "z_c (content code)",
            "dim": codes.content.shape[1],
            "fdr": fisher_discriminant_ratio(codes.content, y),
        }
    )
    return rows


def format_fdr(rows: list[dict[str, Any]]) -> str:
    lines = ["| space | dim | FDR |", "|---|---:|---:|"]
    lines += [f"| {r['space']} | {r['dim']} | {r['fdr']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n"


def write_report(result: TrainResult, directory: str | Path) -> Path:
    """``confusion_matrix.png`` (known test rows), ``fingerprints.png`` (test rows, unknowns by their source),
    ``fdr.md`` + ``fdr.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data, names = result.data, result.data.class_names
    if len(data.y_test):
        confusion_matrix_png(data.y_test, result.model.predict(data.x_test), names, directory / "confusion_matrix.png")
        x = np.concatenate([data.x_test, data.x_unknown]) if len(data.x_unknown) else data.x_test
        labels = [names[i] for i in data.y_test] + [f"{s} (unknown)" for s in data.unknown_sources]
        fingerprint_plot_png(result.model.predict_codes(x).fp, labels, directory / "fingerprints.png")
    rows = fdr_table(result)
    (directory / "fdr.md").write_text(format_fdr(rows))
    (directory / "fdr.json").write_text(json.dumps(rows, indent=2))
    return directory
