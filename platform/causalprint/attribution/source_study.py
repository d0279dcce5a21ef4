"""Which architecture-only instances to train on: each named set trained by the training job, shift copies scored.

A variant names groups of instances and may also name its own input columns (a subset of the extraction's), so
that one study can weigh what the architecture head reads as well as what it sees.

Choosing training sources by how well the model then names content-shift copies is itself a fit to those
copies. So a study states its rule before it runs (``rule``, printed with the table), scores only the shift
rounds it lists, and leaves a later round to ``causalprint evaluate`` (docs/attribution.md).

Each variant is a real training run (:func:`run_training`: Ray Train, checkpoints, an MLflow run) named
``study-<study>-<variant>``; nothing is registered. A rerun finds the checkpoints and only rescores.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from causalprint.attribution.dataset import check_columns
from causalprint.attribution.training.config import TrainJobConfig
from causalprint.attribution.training.driver import TrainResult, run_training
from causalprint.config import StrictModel
from causalprint.evaluation.eval_rows import EvalRows, load_eval_rows
from causalprint.evaluation.metrics import architecture_accuracy
from causalprint.presets import load_preset
from causalprint.runtime.job_config import JobConfig
from causalprint.storage import Storage

log = logging.getLogger(__name__)

_NAME = r"^[a-z0-9][a-z0-9_-]*$"


class StudyVariant(StrictModel):
    """One variant: the groups of architecture-only instances it trains on, and optionally its input columns."""

    groups: list[str]
    columns: list[str] | None = Field(
        default=None, min_length=1, description="<mode>.<space> columns instead of the train preset's"
    )


class StudyConfig(StrictModel):
    """Variants of one train preset that differ in their architecture-only instances (and maybe their columns)."""

    name: str = Field(pattern=_NAME)
    train_preset: str = Field(description="the train preset every variant starts from")
    groups: dict[str, list[str]] = Field(min_length=1, description="named lists of architecture-only instances")
    variants: dict[str, StudyVariant] = Field(
        min_length=1, description="variant name -> the groups it trains on (a list), or {groups, columns}"
    )
    shift_sources: list[str] = Field(min_length=1, description="copies scored by architecture accuracy")
    features: str = Field(description="extraction output holding the shift copies' test rows")
    rule: str = Field(min_length=1, description="how the winner is chosen, fixed before the runs")
    min_val_accuracy: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="the rule's bound: the highest shift mean wins among the variants "
        "whose validation accuracy reaches it",
    )

    @field_validator("variants", mode="before")
    @classmethod
    def _groups_alone(cls, value: Any) -> Any:
        if isinstance(value, dict):  # a plain list names the groups, and the preset's columns are kept
            return {k: {"groups": v} if isinstance(v, (list, tuple)) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        for variant, spec in self.variants.items():
            if not re.fullmatch(_NAME, variant):
                raise ValueError(f"variant name {variant!r} must match {_NAME}")
            unknown = sorted(set(spec.groups) - set(self.groups))
            if unknown:
                raise ValueError(f"variant {variant!r} names unknown groups {unknown}; groups: {sorted(self.groups)}")
        scored = sorted(set(self.shift_sources) & set(self.pool))
        if scored:
            raise ValueError(f"{scored} are both trained on (groups) and scored (shift_sources)")
        return self

    @property
    def pool(self) -> list[str]:
        """Every instance some variant may train on; a variant excludes the ones it does not choose."""
        return sorted({s for names in self.groups.values() for s in names})

    def sources_of(self, variant: str) -> list[str]:
        """The architecture-only instances of ``variant``, in group order."""
        return list(dict.fromkeys(s for group in self.variants[variant].groups for s in self.groups[group]))


class StudyJobConfig(JobConfig):
    """Config of ``causalprint study``."""

    study: StudyConfig


@dataclass(frozen=True)
class VariantScore:
    """One variant's run: its instances, the chosen epoch's validation and test accuracy, each copy's score."""

    name: str
    sources: list[str]
    chosen_epoch: int
    val_accuracy: float
    test_accuracy: float
    shift: dict[str, float]
    checkpoint_uri: str
    mlflow_run_id: str | None
    columns: list[str] = field(default_factory=list)

    @property
    def shift_mean(self) -> float:
        """Mean over copies (each copy counts once, whatever its row count)."""
        return float(np.mean(list(self.shift.values())))


def chosen_variant(study: StudyConfig, scores: list[VariantScore]) -> VariantScore | None:
    """The rule applied: the highest shift mean among variants with ``min_val_accuracy`` or more (None: none)."""
    # Validation accuracy is a float32 mean of row counts: 1947/2000 reads back as 0.97350001 or 0.97349999.
    eligible = [s for s in scores if s.val_accuracy >= study.min_val_accuracy - 1e-6]
    return max(eligible, key=lambda s: s.shift_mean) if eligible else None


def variant_job(job: StudyJobConfig, variant: str) -> TrainJobConfig:
    """The training job of ``variant``: the train preset with the variant's instances as its only
    architecture-only sources. The preset names its classes (``class_sources``), so every instance the variant
    does not choose, of the study's pool or of the preset, trains nothing."""
    study = job.study
    preset = load_preset("train", study.train_preset)
    data = dict(preset["data"])
    if data.get("class_sources") is None:
        raise ValueError(
            f"study {study.name!r}: train preset {study.train_preset!r} must name its classes "
            "(data.class_sources), so that the instances a variant does not choose train nothing"
        )
    data["architecture_only_sources"] = study.sources_of(variant)
    if study.variants[variant].columns is not None:
        data["columns"] = study.variants[variant].columns
    return TrainJobConfig.model_validate(
        {
            **{k: preset[k] for k in ("model", "train", "scaling") if k in preset},
            "name": f"study-{study.name}-{variant}",
            "data": data,
            # The objects, not dumps: a JSON dump masks the storage credentials.
            "storage": job.storage,
            "ray": job.ray,
            "mlflow": job.mlflow,
        }
    )


def score_copies(result: TrainResult, rows: EvalRows, copies: list[str]) -> dict[str, float]:
    """Architecture accuracy of the run's chosen model on each copy's rows (the model's own answer, as a scan
    gives it: its architecture head at the calibrated temperature)."""
    if rows.reference_id != result.data.reference_id:
        raise ValueError(
            f"the shift rows come from reference {rows.reference_id!r}, the model was trained on "
            f"{result.data.reference_id!r}: point study.features at the training's extraction"
        )
    x = np.concatenate([rows.inputs[c] for c in result.data.columns], axis=1)
    pred = result.model.predict_architecture(x, result.calibration.temperature)
    out = {}
    for copy in copies:
        mine = rows.source == copy
        if not mine.any():
            raise ValueError(f"no test rows of shift copy {copy!r}: extract it first")
        out[copy] = architecture_accuracy(pred[mine], rows.arch[mine])
    return out


def run_study(job: StudyJobConfig) -> list[VariantScore]:
    """Train (or reuse) every variant and score the shift copies on its chosen checkpoint."""
    study = job.study
    storage = Storage(job.storage)
    jobs = {v: variant_job(job, v) for v in study.variants}
    columns = list(dict.fromkeys(c for train_job in jobs.values() for c in train_job.data.columns))
    split = next(iter(jobs.values())).data.test_split
    # Every variant's training reads checked before the first of them trains for tens of minutes.
    for prefix, wanted in {(p, tuple(j.data.columns)) for j in jobs.values() for p in j.data.prefixes}:
        check_columns(storage, prefix, list(wanted))
    rows = load_eval_rows(storage, study.features, columns, study.shift_sources, split)
    scores = []
    for i, (variant, train_job) in enumerate(jobs.items(), 1):
        log.info(
            "study %s: variant %s (%d of %d), %d architecture-only instances",
            study.name,
            variant,
            i,
            len(jobs),
            len(train_job.data.architecture_only_sources),
        )
        result = run_training(train_job)
        chosen = int(result.metrics["chosen_epoch"])
        val = next(h["val_accuracy"] for h in result.history if int(h["epoch"]) == chosen)
        score = VariantScore(
            variant,
            train_job.data.architecture_only_sources,
            chosen,
            float(val),
            float(result.metrics["test_accuracy"]),
            score_copies(result, rows, study.shift_sources),
            result.checkpoint_uri,
            result.mlflow_run_id,
            list(train_job.data.columns),
        )
        log.info(
            "study %s: %s val %.4f, test %.4f, shift mean %.1f %%",
            study.name,
            variant,
            score.val_accuracy,
            score.test_accuracy,
            100 * score.shift_mean,
        )
        scores.append(score)
        del result  # its data (gigabytes on the bench) before the next variant's run loads its own
    return scores


def format_study(study: StudyConfig, scores: list[VariantScore]) -> str:
    """Markdown: the rule, one row per variant, then each copy's accuracy under each variant."""
    winner = chosen_variant(study, scores)
    lines = [
        f"Rule, fixed before the runs: {study.rule}",
        "",
        f"Chosen by the rule (validation accuracy at least {study.min_val_accuracy:g}, then the highest shift "
        f"mean): " + (f"**{winner.name}**." if winner else "none reaches the bound."),
        "",
    ]
    # The columns cell only where some variant reads other columns than the preset's.
    own_columns = any(v.columns is not None for v in study.variants.values())
    lines += [
        f"Each variant is `train` preset `{study.train_preset}` with its own architecture-only instances "
        f"(the study's other instances train nothing)"
        + (", and some with their own input columns" if own_columns else "")
        + f"; scored at the checkpoint the training job chose, on the test rows of {len(study.shift_sources)} "
        f"shift copies (mean over copies).",
        "",
        "| variant | groups |"
        + (" input columns |" if own_columns else "")
        + " instances | chosen epoch | val acc. | test acc. | shift mean | worst copy |",
        "|---|---|" + ("---|" if own_columns else "") + "---:|---:|---:|---:|---:|---|",
    ]
    for s in scores:
        worst, spec = min(s.shift, key=lambda k: s.shift[k]), study.variants[s.name]
        read = ", ".join(spec.columns) if spec.columns else "the preset's"
        columns = f" {read} |" if own_columns else ""
        lines.append(
            f"| {s.name} | {' + '.join(spec.groups)} |{columns} {len(s.sources)} | {s.chosen_epoch} "
            f"| {s.val_accuracy:.4f} | {s.test_accuracy:.4f} | {100 * s.shift_mean:.1f} "
            f"| {worst} {100 * s.shift[worst]:.1f} |"
        )
    lines += ["", "| shift copy | " + " | ".join(s.name for s in scores) + " |", "|---|" + "---:|" * len(scores)]
    for copy in study.shift_sources:
        lines.append(f"| {copy} | " + " | ".join(f"{100 * s.shift[copy]:.1f}" for s in scores) + " |")
    return "\n".join(lines)


def study_summary(study: StudyConfig, scores: list[VariantScore]) -> list[dict[str, Any]]:
    """JSON-ready figures of each variant (for the command's stdout)."""
    winner = chosen_variant(study, scores)
    return [
        {
            "variant": s.name,
            "chosen": s is winner,
            "val_accuracy": round(s.val_accuracy, 4),
            "test_accuracy": round(s.test_accuracy, 4),
            "shift_mean": round(s.shift_mean, 4),
            "chosen_epoch": s.chosen_epoch,
            "columns": s.columns,
            "checkpoint": s.checkpoint_uri,
            "mlflow_run_id": s.mlflow_run_id,
        }
        for s in scores
    ]
