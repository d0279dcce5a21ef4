"""Ablations of the attributor: the same training with one part taken away (input columns, loss terms), each
variant scored on the evaluation's test rows (clean and every perturbed condition whose features exist), so that
the table shows which part carries which figure.

Every variant is the train preset with its changes, trained by the train job's own code and registered under
``<model_name>-ablation`` (never promoted); a variant may name a registered version instead (the full model that
the benchmark already trained with that very preset). Nothing is extracted here: the rows are the evaluation's
(:mod:`causalprint.evaluation.evaluate_job`), read from storage.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from causalprint.config import StrictModel
from causalprint.evaluation.evaluate_job import (
    EvaluateConfig,
    RowCache,
    score_closed,
    score_open,
    test_prefix,
)
from causalprint.evaluation.methods import OursMethod
from causalprint.runtime.job_config import JobConfig
from causalprint.storage import Storage
from causalprint.tracking.mlflow_setup import tracking_uri_for
from causalprint.tracking.versions import load_attributor, pin_model_uri

log = logging.getLogger(__name__)

FULL = "full"


class AblationVariant(StrictModel):
    """One row: the train preset with ``columns`` (the attributor's input) and ``model`` (loss weights, shape)
    replaced; or ``model_uri``, a registered version trained with the preset unchanged."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    columns: list[str] | None = Field(default=None, min_length=1)
    model: dict[str, Any] = Field(default_factory=dict)
    model_uri: str | None = None

    @model_validator(mode="after")
    def _trained_or_named(self) -> AblationVariant:
        if self.model_uri is not None and (self.columns is not None or self.model):
            raise ValueError(f"variant {self.name}: model_uri names a trained version; it takes no changes")
        return self


class AblateConfig(StrictModel):
    """The ablation of one train preset, scored on one evaluation preset's rows."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    train_preset: str
    openset_train_preset: str | None = Field(
        default=None,
        description="train every variant a second time with this preset's held-out sources, for an open-set "
        "AUROC column (doubles the training time); None: no open-set column",
    )
    evaluate_preset: str = Field(description="where the test rows, sources, twins and conditions come from")
    variants: list[AblationVariant] = Field(min_length=2)
    figures: str | None = Field(default=None, description="local folder for the plot that docs link to")

    @model_validator(mode="after")
    def _one_full_model(self) -> AblateConfig:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names repeat: {names}")
        if FULL not in names:
            raise ValueError(f"one variant must be named {FULL!r}: the model the others are compared with")
        named = [v.name for v in self.variants if v.model_uri is not None]
        if self.openset_train_preset and named:
            raise ValueError(f"variants {named} name a trained model: they have no open-set instance to score")
        return self


class AblateJobConfig(JobConfig):
    ablate: AblateConfig


@dataclass
class VariantScores:
    """One variant's figures: closed-set accuracy per condition, twins (clean), open-set AUROC (clean)."""

    name: str
    model: str
    columns: list[str]
    changes: str
    train_seconds: float | None
    accuracy: dict[str, float] = field(default_factory=dict)
    twins: float | None = None
    open_auroc: float | None = None

    def mean(self, conditions: list[str]) -> float:
        return float(np.mean([self.accuracy[c] for c in conditions]))


@dataclass
class AblationResult:
    config: AblateConfig
    conditions: list[str]  # the conditions every variant was scored on
    missing: dict[str, str]  # condition -> why it was not scored
    variants: list[VariantScores]
    figure: str | None = None

    def full(self) -> VariantScores:
        return next(v for v in self.variants if v.name == FULL)

    def axes(self, variant: VariantScores) -> dict[str, tuple[float, float]]:
        """Axis -> (full, variant), for every figure both have."""
        full = self.full()
        out = {c: (full.accuracy[c], variant.accuracy[c]) for c in self.conditions}
        out["mean over conditions"] = (full.mean(self.conditions), variant.mean(self.conditions))
        if full.twins is not None and variant.twins is not None:
            out["twins"] = (full.twins, variant.twins)
        if full.open_auroc is not None and variant.open_auroc is not None:
            out["open-set AUROC"] = (full.open_auroc, variant.open_auroc)
        return out


TrainVariant = Callable[[AblateJobConfig, str, AblationVariant, str], tuple[str, float]]
"""(job, train preset, variant, model-name suffix) -> (registered version URI, training seconds): the train job's
own code, passed in by :mod:`causalprint.jobs.ablate` (the jobs layer sits above this one)."""


def _changes(variant: AblationVariant, preset_columns: list[str]) -> str:
    if variant.model_uri is not None:
        return "the preset unchanged (registered)"
    parts = []
    if variant.columns is not None:
        dropped = [c for c in preset_columns if c not in variant.columns]
        parts.append(f"columns {', '.join(variant.columns)}" + (f" (without {', '.join(dropped)})" if dropped else ""))
    parts += [f"{k} = {v}" for k, v in variant.model.items()]
    return "; ".join(parts) or "the preset unchanged"


def run_ablation(job: AblateJobConfig, train_variant: TrainVariant) -> AblationResult:
    from causalprint.evaluation.evaluate_job import EvaluateJobConfig
    from causalprint.presets import load_preset

    cfg = job.ablate
    storage = Storage(job.storage)
    tracking = tracking_uri_for(job.mlflow, storage)
    evaluate: EvaluateConfig = EvaluateJobConfig.model_validate(load_preset("evaluate", cfg.evaluate_preset)).evaluate
    preset_columns = list(load_preset("train", cfg.train_preset).get("data", {}).get("columns", []))
    path = evaluate.ours_paths[0]
    scored: list[VariantScores] = []
    missing: dict[str, str] = {}
    for variant in cfg.variants:
        if variant.model_uri is not None:
            uri, seconds = pin_model_uri(variant.model_uri, tracking), None
        else:
            uri, seconds = train_variant(job, cfg.train_preset, variant, "")
        with tempfile.TemporaryDirectory() as tmp:
            method = OursMethod(load_attributor(uri, dst=tmp, tracking_uri=tracking), path)
        scores = VariantScores(variant.name, uri, list(method.columns), _changes(variant, preset_columns), seconds)
        prefixes = {
            c.name: test_prefix(evaluate, method.columns, c, evaluate.features) for c in evaluate.robustness.conditions
        }
        present = {}
        for name, prefix in prefixes.items():
            if storage.exists(f"{storage.resolve(prefix)}/_extraction.json"):
                present[name] = prefix
            else:
                missing[name] = f"no features at {prefix} (run the evaluation's stage first)"
        rows = RowCache(
            storage,
            {p: list(method.columns) for p in present.values()},
            str(method.attributor.requirements["reference_id"]),
        )
        for name, prefix in present.items():
            metrics = score_closed(method, rows.get(prefix, evaluate.sources, evaluate.test_split), evaluate.twins)
            scores.accuracy[name] = metrics["accuracy"]
            if prefix == evaluate.features and "twin_accuracy" in metrics:
                scores.twins = metrics["twin_accuracy"]
        if cfg.openset_train_preset and evaluate.held_out_sources:
            open_uri, open_seconds = train_variant(job, cfg.openset_train_preset, variant, "-openset")
            scores.train_seconds = (scores.train_seconds or 0) + open_seconds
            with tempfile.TemporaryDirectory() as tmp:
                opened = OursMethod(load_attributor(open_uri, dst=tmp, tracking_uri=tracking), path)
            clean = RowCache(
                storage, {evaluate.features: list(opened.columns)}, str(opened.attributor.requirements["reference_id"])
            )
            test = clean.get(evaluate.features, evaluate.sources, evaluate.test_split)
            scores.open_auroc = score_open(opened, test, evaluate.held_out_sources)["auroc"]
        log.info("ablation %s: %s", variant.name, scores.accuracy)
        scored.append(scores)
    conditions = [c.name for c in evaluate.robustness.conditions if c.name not in missing]
    result = AblationResult(cfg, conditions, missing, scored)
    if cfg.figures:
        result.figure = str(plot_ablation(result, Path(cfg.figures) / f"ablation-{cfg.name}.png"))
    return result


def plot_ablation(result: AblationResult, path: Path) -> Path:
    """Accuracy per condition, one line per variant."""
    from causalprint.plots import agg_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    fig = agg_figure(8, 4)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(result.conditions))
    for v in result.variants:
        ax.plot(x, [100 * v.accuracy[c] for c in result.conditions], marker="o", label=v.name)
    ax.set_xticks(x, result.conditions, rotation=30)
    ax.set_ylabel("closed-set accuracy (%)")
    ax.set_title(f"Ablations of the attributor ({result.config.name})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def verdict(result: AblationResult, variant: VariantScores) -> str:
    """What the comparison with the full model says, computed from the figures (ties count as not ahead)."""
    axes = result.axes(variant)
    behind = [a for a, (full, other) in axes.items() if full <= other]
    ahead = [a for a in axes if a not in behind]
    text = f"Against `{variant.name}` ({variant.changes}): the full model is ahead on " + (
        ", ".join(ahead) if ahead else "nothing"
    )
    if behind:
        text += f"; it is not ahead on {', '.join(behind)}: what `{variant.name}` takes away does not help there"
    return text + "."


def format_ablation(result: AblationResult) -> str:
    cfg = result.config
    heads = [*result.conditions, "mean", "twins", *(["open-set AUROC"] if cfg.openset_train_preset else [])]
    lines = [
        f"Train preset `{cfg.train_preset}`"
        + (f" (open set: `{cfg.openset_train_preset}`)" if cfg.openset_train_preset else "")
        + f", scored on the rows of `evaluate/{cfg.evaluate_preset}`: closed-set accuracy per condition.",
        "",
        "| variant | " + " | ".join(heads) + " | train s | model |",
        "|---|" + "---:|" * len(heads) + "---:|---|",
    ]
    for v in result.variants:
        cells = [_pct(v.accuracy[c]) for c in result.conditions]
        cells += [_pct(v.mean(result.conditions)), _pct(v.twins)]
        if cfg.openset_train_preset:
            cells.append("n/a" if v.open_auroc is None else f"{v.open_auroc:.3f}")
        seconds = "reused" if v.train_seconds is None else f"{v.train_seconds:.0f}"
        lines.append(f"| {v.name} | " + " | ".join(cells) + f" | {seconds} | {v.model} |")
    lines += ["", "Columns: " + "; ".join(f"`{v.name}` {', '.join(v.columns)}" for v in result.variants) + "."]
    lines += [""] + [verdict(result, v) for v in result.variants if v.name != FULL]
    if result.missing:
        lines += [""] + [f"Not scored: {c}: {why}." for c, why in sorted(result.missing.items())]
    return "\n".join(lines)
