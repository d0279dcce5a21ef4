"""Generated, from a family never seen: hold out a WHOLE family (every instance of it), train without it, and ask
what a user reads for its images.

For each family named in ``unseen.families``, in turn:

1. split the extraction rows with every source of that family held out (its test rows are the unseen images; the
   real class's test rows are the held-out real ones);
2. train the decoupler on the other classes (in-process, :func:`~causalprint.attribution.model.fit_decoupler`),
   calibrate it on their validation rows, and fit the generated-vs-real head on their train rows, its threshold
   on the real validation rows (:mod:`causalprint.attribution.generated`);
3. score the held-out family against held-out real: the AUROC of the head's score, the share of the family's
   images answered as generated (any answer that names a generator, a model family or "generated (source
   unknown)"; not "real", not "unknown") and the share of real images answered "real", by the decision path
   with the head and, beside it, by the prototypes alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from causalprint.attribution.calibration import calibrate
from causalprint.attribution.dataset import (
    META_COLUMNS,
    AttributionData,
    DataConfig,
    load_columns,
    split_attribution_data,
)
from causalprint.attribution.generated import GeneratedHeadOptions, fit_generated_head
from causalprint.attribution.model import DecouplerConfig, DecouplerOptions, fit_decoupler
from causalprint.attribution.openset import UNKNOWN, auroc
from causalprint.config import StrictModel
from causalprint.runtime.job_config import JobConfig
from causalprint.storage import Storage
from causalprint.tracking.artifacts import LoadedAttributor

log = logging.getLogger(__name__)

__all__ = ["UnseenConfig", "UnseenFamilyRow", "UnseenJobConfig", "format_unseen", "measure_unseen", "run_unseen"]

REAL = "real"


class UnseenConfig(StrictModel):
    """The whole-family open-set measurement."""

    features: str | list[str] = Field(description="extraction output prefix(es)")
    columns: list[str] = Field(min_length=1, description="the attributor's input columns, in order")
    sources: list[str] = Field(min_length=3, description="real and the generators; the families come from the rows")
    families: list[str] = Field(min_length=1, description="each held out whole, in turn")
    model: DecouplerOptions = Field(default_factory=DecouplerOptions)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=128, ge=2)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-2, ge=0)
    target_tpr: float = Field(default=0.95, gt=0, le=1)
    family_threshold: float = Field(default=0.9, gt=0, le=1)
    decision: Literal["prototypes", "logits"] = "prototypes"
    head: GeneratedHeadOptions = Field(default_factory=GeneratedHeadOptions)
    seed: int = 0
    targets: dict[str, float] = Field(
        default_factory=lambda: {"auroc": 0.90, "generated_share": 0.90, "real_kept": 0.95},
        description="what the issue asks, printed beside each figure",
    )

    @model_validator(mode="after")
    def _check(self) -> UnseenConfig:
        if REAL not in self.sources:
            raise ValueError(f"sources must include {REAL!r}: {self.sources}")
        if REAL in self.families:
            raise ValueError("real is no model family: it cannot be held out as one")
        return self

    @property
    def prefixes(self) -> list[str]:
        return [self.features] if isinstance(self.features, str) else list(self.features)


class UnseenJobConfig(JobConfig):
    unseen: UnseenConfig


@dataclass(frozen=True)
class UnseenFamilyRow:
    """The figures of one held-out family (shares in [0, 1])."""

    family: str
    held_out: list[str]
    classes: list[str]
    family_rows: int
    real_rows: int
    auroc: float  # the head's score, held-out family (positive) vs held-out real
    generated_share: float  # of the family's images, answered as generated, with the head
    real_kept: float  # of held-out real images, answered "real", with the head
    answered_real: float  # of the family's images, answered "real", with the head (should be ~0)
    proto_generated_share: float  # the same three by the prototypes alone
    proto_real_kept: float
    proto_answered_real: float
    head_threshold: float
    val_real_kept: float  # of the real validation rows, by the head's threshold
    answers: dict[str, int]  # the family's images per answer, with the head


def _is_generated(label: str) -> bool:
    return label not in (REAL, UNKNOWN)


def _labels(attributor: LoadedAttributor, x: np.ndarray, decision: Literal["prototypes", "logits"]) -> list[str]:
    return [d.label for d in attributor.predict(x, decision)]


def measure_family(data: AttributionData, cfg: UnseenConfig, family: str) -> UnseenFamilyRow:
    """Train without ``family`` (``data`` holds it out), fit the head, score the held-out rows."""
    known = data.known_train
    config = DecouplerConfig(
        input_dim=data.input_dim,
        num_classes=data.num_classes,
        class_names=data.class_names,
        architectures=data.class_architectures,
        **cfg.model.model_dump(),
    )
    model = fit_decoupler(
        data.x_train[known],
        data.y_train[known],
        config,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        schedule="cosine",
        device="cpu",
    )
    calibration = calibrate(model, data, cfg.target_tpr, cfg.family_threshold)
    head = fit_generated_head(data, cfg.head)
    with_head = LoadedAttributor(model, calibration, {"columns": data.columns}, generated=head)
    alone = LoadedAttributor(model, calibration, {"columns": data.columns})
    real = data.class_names.index(REAL)
    x_family, x_real = data.x_unknown, data.x_test[data.y_test == real]
    if not len(x_family) or not len(x_real):
        raise ValueError(f"holding out {family}: {len(x_family)} family and {len(x_real)} real test rows")
    fam_labels, real_labels = _labels(with_head, x_family, cfg.decision), _labels(with_head, x_real, cfg.decision)
    fam_alone, real_alone = _labels(alone, x_family, cfg.decision), _labels(alone, x_real, cfg.decision)
    answers: dict[str, int] = {}
    for label in fam_labels:
        answers[label] = answers.get(label, 0) + 1
    row = UnseenFamilyRow(
        family=family,
        held_out=sorted(set(data.unknown_sources)),
        classes=list(data.class_names),
        family_rows=len(x_family),
        real_rows=len(x_real),
        auroc=auroc(head.score(x_family), head.score(x_real)),
        generated_share=float(np.mean([_is_generated(a) for a in fam_labels])),
        real_kept=float(np.mean([a == REAL for a in real_labels])),
        answered_real=float(np.mean([a == REAL for a in fam_labels])),
        proto_generated_share=float(np.mean([_is_generated(a) for a in fam_alone])),
        proto_real_kept=float(np.mean([a == REAL for a in real_alone])),
        proto_answered_real=float(np.mean([a == REAL for a in fam_alone])),
        head_threshold=head.threshold,
        val_real_kept=head.fitted["val_real_kept"],
        answers=dict(sorted(answers.items(), key=lambda kv: -kv[1])),
    )
    log.info("unseen family %s: %s", family, row)
    return row


def measure_unseen(table: pa.Table, cfg: UnseenConfig, storage: Storage | None = None) -> list[UnseenFamilyRow]:
    """Every family of ``cfg.families`` held out in turn, from one loaded extraction table."""
    families = dict(zip(table["source"].to_pylist(), table["family"].to_pylist()))
    rows = []
    for family in cfg.families:
        held = sorted(s for s in cfg.sources if families.get(s) == family)
        if not held:
            raise ValueError(f"family {family!r} has no source among {cfg.sources}: {families}")
        data_cfg = DataConfig(
            features=cfg.features,
            columns=cfg.columns,
            class_sources=[s for s in cfg.sources if s not in held],
            held_out_sources=held,
        )
        rows.append(measure_family(split_attribution_data(table, data_cfg, storage), cfg, family))
    return rows


def run_unseen(job: UnseenJobConfig) -> list[UnseenFamilyRow]:
    storage = Storage(job.storage)
    cfg = job.unseen
    keep = DataConfig(features=cfg.features, columns=cfg.columns, class_sources=cfg.sources).source_filter()
    tables = [load_columns(storage, p, [*META_COLUMNS, *cfg.columns], keep) for p in cfg.prefixes]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return measure_unseen(table, cfg, storage)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def format_unseen(cfg: UnseenConfig, rows: list[UnseenFamilyRow]) -> str:
    """Markdown: one row per held-out family, the head's decision beside the prototypes' alone, and the targets."""
    t = cfg.targets
    lines = [
        f"Each family held out whole (every instance), in turn: a decoupler ({cfg.epochs} epochs) and the "
        f"generated-vs-real head (columns {', '.join(cfg.head.columns or cfg.columns)}; "
        f"{'logistic' if not cfg.head.hidden else f'one hidden layer of {cfg.head.hidden}'}; threshold keeping "
        f"{_pct(cfg.head.keep_real)} % of real validation rows real) trained on the other classes; scored on the "
        f"held-out family's test images against the real class's test images, {cfg.decision} decision path. "
        f"Targets: AUROC >= {t['auroc']:.2f}, >= {_pct(t['generated_share'])} % of the family answered as "
        f"generated, >= {_pct(t['real_kept'])} % of real kept real.",
        "",
        "| held-out family | sources | images (family / real) | head AUROC | answered generated | real kept real | "
        "family answered real | prototypes alone: generated / real kept / family as real | head threshold |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.family} | {', '.join(r.held_out)} | {r.family_rows} / {r.real_rows} | {r.auroc:.3f} | "
            f"{_pct(r.generated_share)} % | {_pct(r.real_kept)} % | {_pct(r.answered_real)} % | "
            f"{_pct(r.proto_generated_share)} % / {_pct(r.proto_real_kept)} % / {_pct(r.proto_answered_real)} % | "
            f"{r.head_threshold:.3f} |"
        )
    lines += [
        "",
        "The held-out family's answers, with the head: "
        + "; ".join(f"{r.family}: " + ", ".join(f"{k} {v}" for k, v in r.answers.items()) for r in rows)
        + ".",
    ]
    met = [
        r.family
        for r in rows
        if r.auroc >= t["auroc"] and r.generated_share >= t["generated_share"] and r.real_kept >= t["real_kept"]
    ]
    missed = [r.family for r in rows if r.family not in met]
    lines.append(f"Targets met for: {', '.join(met) or 'none'}; missed for: {', '.join(missed) or 'none'}.")
    return "\n".join(lines)
