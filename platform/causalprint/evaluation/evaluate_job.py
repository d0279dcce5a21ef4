"""The evaluation job: our registered attributor against the baselines, clean, perturbed, shifted and open set.

Every method is scored on the same test rows of the ``bench`` zoo (DIRE on its stated subset):
- closed set: accuracy, macro-F1, ECE, twin-pair accuracy, clean and under each robustness condition;
- content shift: the closed-set model on the shift copies (same architectures, trained on the other content
  group); a prediction counts when its architecture is right. Fresh shift copies (added after the model's
  design was chosen) are scored the same way, in a column of their own;
- open set: a second instance of every method trained without ``held_out_sources``; AUROC and OSCR of its
  known-ness score, known test rows against the held-out sources' rows;
- enrolment: ours' open-set instance enrols each held-out source from a few of its train images, without
  retraining (:mod:`causalprint.evaluation.few_shot`).
Baselines train on the same rows as ours (train split minus the validation carve-out, clean + augmented copy),
except the rows of ours' ``architecture_only_sources``: a baseline is a source classifier and gets none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from causalprint.attribution.dataset import DataConfig, load_attribution_data
from causalprint.attribution.prototype_enrolment import check_names
from causalprint.attribution.training.driver import extraction_requirements
from causalprint.config import StrictModel, check_one_role
from causalprint.evaluation.conditions import Condition
from causalprint.evaluation.eval_rows import EvalRows, load_eval_rows
from causalprint.evaluation.few_shot import format_enrolment, score_enrolment
from causalprint.evaluation.methods import BaselineMethod, Method, OursMethod
from causalprint.evaluation.metrics import (
    architecture_accuracy,
    closed_set_metrics,
    decision_shares,
    open_set_metrics,
    per_source_precision_recall,
)
from causalprint.evaluation.robustness import (
    RobustnessConfig,
    condition_extract_jobs,
    condition_output,
    extract_conditions,
)
from causalprint.evaluation.separability import fisher_discriminant_ratio
from causalprint.plots import (
    confusion_matrix_png,
    fingerprint_plot_png,
    shift_examples_png,
)
from causalprint.runtime.job_config import JobConfig
from causalprint.runtime.ray_local import ensure_ray
from causalprint.storage import Storage
from causalprint.storage.folders import download_folder, upload_folder
from causalprint.tracking.artifacts import LoadedAttributor
from causalprint.tracking.mlflow_setup import (
    MlflowConfig,
    configure_mlflow,
    tracking_uri_for,
)
from causalprint.tracking.versions import load_attributor, pin_model_uri

log = logging.getLogger(__name__)

ENROL_SEED = 0  # which train images each enrolment draws


class BaselineSpec(StrictModel):
    """A baseline by registry name (``causalprint.baselines``); ``train_features``/``test_features`` override the
    job's when its columns live elsewhere (DIRE's residuals are a subset extraction)."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    train_features: list[str] | None = None
    test_features: str | None = None


def _default_ours_paths() -> list[Literal["prototypes", "logits"]]:
    return ["prototypes", "logits"]


class EvaluateConfig(StrictModel):
    name: str = Field(default="bench", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    model: str = Field(description="our closed-set model, e.g. models:/causalprint-attributor@champion")
    openset_model: str | None = Field(default=None, description="ours trained without held_out_sources")
    manifest: str = "zoo/bench/manifest.parquet"
    reference: str = "models/reference/bench"
    features: str = Field(description="the clean extraction output: test rows and the content-shift rows")
    train_features: list[str] = Field(min_length=1, description="what the baselines train on (as ours did)")
    sources: list[str] = Field(min_length=2, description="the closed-set classes")
    held_out_sources: list[str] = Field(default_factory=list, description="the open-set instances' unknowns")
    shift_sources: list[str] = Field(default_factory=list, description="same architectures, other content group")
    fresh_shift_sources: list[str] = Field(
        default_factory=list,
        description="more shift copies, added after the model was chosen: no design choice "
        "looked at them, so their figure checks the shift column's",
    )
    twins: list[str] = Field(default_factory=list)
    train_split: str = "train"
    test_split: str = "heldout"
    ours_paths: list[Literal["prototypes", "logits"]] = Field(
        default_factory=_default_ours_paths,
        min_length=1,
        description="our decision paths to report, one row each (the first is the one the summary names)",
    )
    baselines: list[BaselineSpec] = Field(default_factory=list)
    baseline_cache: str = "evaluation/baselines"
    robustness: RobustnessConfig = RobustnessConfig()
    figures: str | None = Field(default=None, description="local folder for the PNGs that docs link to")
    enrol_shots: list[int] = Field(
        default_factory=lambda: [5, 25],
        description="enrol each held-out source into the open-set instance from "
        "this many of its train images and score it (one figure per entry; empty: not measured)",
    )

    @model_validator(mode="after")
    def _check(self) -> EvaluateConfig:
        stray = sorted(set(self.held_out_sources) - set(self.sources))
        if stray:
            raise ValueError(f"held_out_sources {stray} must be among sources {self.sources}")
        if any(k < 1 for k in self.enrol_shots):
            raise ValueError(f"enrol_shots must be positive, got {self.enrol_shots}")
        check_one_role(
            {
                "sources": self.sources,
                "shift_sources": self.shift_sources,
                "fresh_shift_sources": self.fresh_shift_sources,
            }
        )
        return self


class EvaluateJobConfig(JobConfig):
    mlflow: MlflowConfig = MlflowConfig(experiment="causalprint-evaluation")
    evaluate: EvaluateConfig


@dataclass
class MethodScores:
    """One method's figures; ``conditions[name]`` holds the closed-set metrics under that condition."""

    name: str
    conditions: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    shift_architecture_accuracy: float | None = None
    shift_rows: int = 0
    fresh_shift_architecture_accuracy: float | None = None
    fresh_shift_rows: int = 0
    shift_by_source: dict[str, dict[str, Any]] = field(default_factory=dict)  # shift and fresh shift copies
    open_set: dict[str, dict[str, float]] = field(default_factory=dict)
    train_seconds: float | None = None
    reused: bool = False

    def mean_accuracy(self) -> float:
        return float(np.mean([m["accuracy"] for m in self.conditions.values()]))


@dataclass
class EvaluationResult:
    config: EvaluateConfig
    scores: list[MethodScores]
    ours_details: dict[str, Any]
    figures: dict[str, str]
    models: dict[str, str] = field(default_factory=dict)  # ours: role -> the pinned model URI scored
    enrolment: list[dict[str, Any]] = field(default_factory=list)  # score_enrolment's, one per shot count
    mlflow_run_id: str | None = None


# ----- rows -----


class RowCache:
    """Test rows per (output, sources, split), loaded once with every column any method needs; every output must
    come from the reference model the attributors were trained with."""

    def __init__(self, storage: Storage, columns_of: dict[str, list[str]], reference_id: str) -> None:
        self.storage, self.columns_of, self.reference_id = storage, columns_of, reference_id
        self._rows: dict[tuple[str, tuple[str, ...], str], EvalRows] = {}

    def get(self, prefix: str, sources: list[str], split: str) -> EvalRows:
        key = (prefix, tuple(sources), split)
        if key not in self._rows:
            rows = load_eval_rows(self.storage, prefix, self.columns_of[prefix], sources, split)
            if rows.reference_id != self.reference_id:
                raise ValueError(
                    f"{prefix} holds vectors of reference {rows.reference_id!r}; the attributors were "
                    f"trained on {self.reference_id!r}: extract with that reference model"
                )
            self._rows[key] = rows
        return self._rows[key]


def _is_dire_column(column: str, robust: RobustnessConfig) -> bool:
    return column.split(".", 1)[0] in robust.dire_modes


def test_prefix(cfg: EvaluateConfig, method_columns: tuple[str, ...], condition: Condition, clean_prefix: str) -> str:
    dire = [_is_dire_column(c, cfg.robustness) for c in method_columns]
    if any(dire) and not all(dire):
        raise ValueError(f"columns {method_columns} mix the dire subset with the main extraction")
    if condition.clean:
        return clean_prefix
    return condition_output(cfg.robustness, condition, dire=all(dire))


# ----- methods -----


def _cache_key(cls: Any, spec: BaselineSpec, data_cfg: DataConfig, reference_id: str, trained: list[str]) -> str:
    """What a trained baseline depends on: its resolved options (a changed default retrains), the format of its
    folder, its training rows (the ``trained`` sources, less the held-out ones) and the reference model; not
    where it is tested, nor which other sources the zoo holds, nor the list that names its classes (``trained``
    names them once)."""
    from causalprint.baselines.base import FORMAT_VERSION

    data = {**data_cfg.model_dump(exclude={"class_sources", "excluded_sources"}), "trained": sorted(trained)}
    blob = json.dumps(
        {
            "baseline": spec.name,
            "format": FORMAT_VERSION,
            "data": data,
            "options": cls.Options.model_validate(spec.options).model_dump(mode="json"),
            "ref": reference_id,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fit_baseline(
    storage: Storage, cfg: EvaluateConfig, spec: BaselineSpec, held_out: list[str], class_names: list[str]
) -> tuple[BaselineMethod, float, bool]:
    """Train ``spec`` on the job's train rows of ``cfg.sources`` (or reuse the copy cached in storage under the
    same inputs); returns the method, its training seconds (as measured when it was trained) and whether it was
    reused."""
    from causalprint.baselines.registry import BASELINES

    cls = BASELINES.get(spec.name)
    data_cfg = DataConfig(
        features=spec.train_features or cfg.train_features,
        columns=list(cls.columns),
        class_sources=[s for s in cfg.sources if s not in held_out],
        held_out_sources=held_out,
        train_split=cfg.train_split,
        test_split=cfg.test_split,
    )
    # The cache key needs only the extraction record; the rows are read when the baseline must train.
    record = extraction_requirements(storage, data_cfg.features, data_cfg.columns)
    data = None
    if record:
        reference_id = record["reference_id"]
    else:
        data = load_attribution_data(storage, data_cfg)
        reference_id = data.reference_id
    folder = f"{cfg.baseline_cache}/{spec.name}-{_cache_key(cls, spec, data_cfg, reference_id, cfg.sources)}"
    done = f"{storage.resolve(folder)}/_DONE.json"
    stored = storage.read_json(done) if storage.exists(done) else None
    if stored is not None and stored.get("class_names") == class_names:
        with tempfile.TemporaryDirectory() as tmp:
            baseline = cls.from_pretrained(download_folder(storage, folder, tmp))
        log.info("baseline %s: reused %s", spec.name, folder)
        return BaselineMethod(baseline, class_names), float(stored["train_seconds"]), True
    data = data or load_attribution_data(storage, data_cfg)
    if data.class_names != class_names:
        raise ValueError(
            f"baseline {spec.name} would train on {data.class_names}, ours on {class_names}: "
            "evaluate on the same sources"
        )
    baseline = cls(**spec.options)
    inputs = {c: data.x_train[:, s] for c, s in data.column_slices().items()}
    start = time.perf_counter()
    baseline.fit(inputs, data.y_train, data.num_classes)
    seconds = time.perf_counter() - start
    log.info("baseline %s (held out %s): trained on %d rows in %.1f s", spec.name, held_out, len(data.y_train), seconds)
    with tempfile.TemporaryDirectory() as tmp:
        baseline.save_pretrained(tmp)
        (Path(tmp) / "_DONE.json").write_text(
            json.dumps({"train_seconds": seconds, "rows": len(data.y_train), "class_names": data.class_names})
        )
        upload_folder(storage, tmp, folder, last="_DONE.json")
    return BaselineMethod(baseline, class_names), seconds, False


# ----- scoring -----


def score_closed(method: Method, rows: EvalRows, twins: list[str]) -> dict[str, float]:
    probs = method.predict_proba(rows.inputs)
    return closed_set_metrics(rows.labels(method.class_names), probs, method.class_names, twins)


def _score_shift(
    method: Method, shift: EvalRows, sources: list[str], arch_of: dict[str, str], by_source: dict[str, dict[str, Any]]
) -> tuple[float, int]:
    """Architecture-level accuracy over the shift rows and their count; adds each copy's accuracy and most
    frequent answers to ``by_source``, in the order of ``sources``."""
    pred = method.predict_architecture(shift.inputs, arch_of)
    for source in sources:
        rows_of = shift.source == source
        if not rows_of.any():  # a copy missing from a method's test features would shrink its figure unseen
            raise ValueError(f"{method.name} has no test rows of shift copy {source!r}: extract it first")
        names, counts = np.unique(pred[rows_of].astype(str), return_counts=True)
        by_source[source] = {
            "architecture_accuracy": architecture_accuracy(pred[rows_of], shift.arch[rows_of]),
            "rows": int(rows_of.sum()),
            "predicted": {str(n): int(c) for n, c in sorted(zip(names, counts), key=lambda t: -t[1])},
        }
    return architecture_accuracy(pred, shift.arch), len(shift)


def score_open(method: Method, rows: EvalRows, held_out: list[str]) -> dict[str, float]:
    unknown = np.isin(rows.source, held_out)
    known_rows, unknown_rows = rows.subset(~unknown), rows.subset(unknown)
    probs = method.predict_proba(known_rows.inputs)
    correct = probs.argmax(1) == known_rows.labels(method.class_names)
    return open_set_metrics(method.known_score(known_rows.inputs), correct, method.known_score(unknown_rows.inputs))


def _ours_details(ours: OursMethod, rows: EvalRows, figures: Path | None) -> tuple[dict[str, Any], dict[str, str]]:
    names = ours.class_names
    y = rows.labels(names)
    codes = ours.codes(rows.inputs)
    pred = ours.predict_proba(rows.inputs).argmax(1)
    details = {
        "per_source": per_source_precision_recall(y, pred, names),
        # What users read: the scan's open-set decision on the same rows, at the model's operating point.
        "decisions": decision_shares(rows.source.tolist(), ours.decisions(rows.inputs)),
        "operating_point": {"path": ours.source, **ours.operating_point()},
        "fingerprint_fdr": fisher_discriminant_ratio(codes.fp, y),
        "content_fdr": fisher_discriminant_ratio(codes.content, y),
    }
    paths = {}
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        paths["confusion"] = str(figures / "confusion.png")
        details["confusion"] = confusion_matrix_png(y, pred, names, paths["confusion"]).tolist()
        paths["fingerprints"] = str(figures / "fingerprints.png")
        fingerprint_plot_png(codes.fp, [names[i] for i in y], paths["fingerprints"])
    return details, paths


def _shift_examples(
    storage: Storage, cfg: EvaluateConfig, rows: RowCache, ours: MethodScores, path: str, per_copy: int = 8
) -> None:
    """The first ``per_copy`` images of every shift copy, captioned with how often ours named the architecture."""
    examples: dict[str, list[str]] = {}
    for sources in (cfg.shift_sources, cfg.fresh_shift_sources):
        if sources:
            shift = rows.get(cfg.features, sources, cfg.test_split)
            assert shift.uri is not None  # rows read by load_eval_rows carry their URIs
            for source in sources:
                examples[source] = [str(u) for u in shift.uri[shift.source == source][:per_copy]]
    captions = {
        c: f"{_pct(v['architecture_accuracy'])} % named" + (" (fresh)" * (c in cfg.fresh_shift_sources))
        for c, v in ours.shift_by_source.items()
    }
    shift_examples_png(storage, examples, captions, path)


def run_evaluation(job: EvaluateJobConfig) -> EvaluationResult:
    """Extract what is missing, train (or reuse) the baselines, score every method; log to MLflow."""
    import mlflow

    from causalprint.baselines.registry import BASELINES

    cfg = job.evaluate
    ensure_ray(job.ray)
    storage = Storage(job.storage)
    configure_mlflow(job.mlflow, storage)
    tracking = tracking_uri_for(job.mlflow, storage)
    robust = cfg.robustness

    # Pinned first, so that the report names the versions scored even if an alias moves meanwhile.
    models = {"closed set": pin_model_uri(cfg.model, tracking)}
    if cfg.openset_model:
        models["open set"] = pin_model_uri(cfg.openset_model, tracking)
    with tempfile.TemporaryDirectory() as tmp:
        closed_model = load_attributor(models["closed set"], dst=f"{tmp}/closed", tracking_uri=tracking)
        open_model = (
            load_attributor(models["open set"], dst=f"{tmp}/open", tracking_uri=tracking) if cfg.openset_model else None
        )
    ours_all = [OursMethod(closed_model, path) for path in cfg.ours_paths]
    ours = ours_all[0]
    class_names = ours.class_names
    if sorted(class_names) != sorted(cfg.sources):
        raise ValueError(f"{cfg.model} knows {class_names}, the evaluation's sources are {cfg.sources}")
    open_classes = sorted(set(cfg.sources) - set(cfg.held_out_sources))
    if open_model is not None and list(open_model.calibration.class_names) != open_classes:
        raise ValueError(
            f"{cfg.openset_model} knows {open_model.calibration.class_names}; with "
            f"{cfg.held_out_sources} held out it should know {open_classes}"
        )

    # The perturbed test sets (a finished one is only listed).
    needs_dire = any(_is_dire_column(c, robust) for b in cfg.baselines for c in BASELINES.get(b.name).columns)
    extract_kw: dict[str, Any] = dict(
        manifest=cfg.manifest,
        reference=cfg.reference,
        sources=cfg.sources,
        split=cfg.test_split,
        storage=job.storage,
        ray=job.ray,
    )
    extract_conditions(
        condition_extract_jobs(robust, dire=False, **extract_kw)
        + (condition_extract_jobs(robust, dire=True, **extract_kw) if needs_dire else [])
    )

    # The methods: ours, then each baseline closed-set and open-set.
    closed: list[tuple[Method, str, float | None, bool]] = [(m, cfg.features, None, False) for m in ours_all]
    opened: dict[str, Method] = (
        {m.name: OursMethod(open_model, m.source) for m in ours_all} if open_model is not None else {}
    )
    method: Method  # bound to a baseline here, to ours or a baseline in the loops below
    seconds: float | None
    for spec in cfg.baselines:
        method, seconds, reused = fit_baseline(storage, cfg, spec, [], class_names)
        closed.append((method, spec.test_features or cfg.features, seconds, reused))
        if cfg.held_out_sources:
            opened[method.name], _, _ = fit_baseline(storage, cfg, spec, cfg.held_out_sources, open_classes)

    columns_of: dict[str, set[str]] = {}
    for method, clean_prefix, _, _ in closed:
        for condition in robust.conditions:
            columns_of.setdefault(test_prefix(cfg, method.columns, condition, clean_prefix), set()).update(
                method.columns
            )
    rows = RowCache(
        storage, {k: sorted(v) for k, v in columns_of.items()}, str(closed_model.requirements["reference_id"])
    )

    # Before the long scoring loop, so that a held-out source that cannot be enrolled fails the job early.
    enrolment = (
        _enrolment(storage, cfg, open_model, closed_model, rows)
        if open_model is not None and cfg.held_out_sources and cfg.enrol_shots
        else []
    )
    arch_of = {}
    scores = []
    for method, clean_prefix, seconds, reused in closed:
        s = MethodScores(method.name, train_seconds=seconds, reused=reused)
        for condition in robust.conditions:
            prefix = test_prefix(cfg, method.columns, condition, clean_prefix)
            test = rows.get(prefix, cfg.sources, cfg.test_split)
            s.conditions[condition.name] = score_closed(method, test, cfg.twins)
            s.rows[condition.name] = len(test)
            if condition.clean:
                arch_of.update(dict(zip(test.source.tolist(), test.arch.tolist())))
            open_method = opened.get(method.name)
            if open_method is not None:
                s.open_set[condition.name] = score_open(open_method, test, cfg.held_out_sources)
        if cfg.shift_sources:
            s.shift_architecture_accuracy, s.shift_rows = _score_shift(
                method,
                rows.get(clean_prefix, cfg.shift_sources, cfg.test_split),
                cfg.shift_sources,
                arch_of,
                s.shift_by_source,
            )
        if cfg.fresh_shift_sources:
            s.fresh_shift_architecture_accuracy, s.fresh_shift_rows = _score_shift(
                method,
                rows.get(clean_prefix, cfg.fresh_shift_sources, cfg.test_split),
                cfg.fresh_shift_sources,
                arch_of,
                s.shift_by_source,
            )
        log.info("evaluated %s: mean accuracy %.4f over %d conditions", s.name, s.mean_accuracy(), len(s.conditions))
        scores.append(s)

    clean_rows = rows.get(cfg.features, cfg.sources, cfg.test_split)
    figures = Path(cfg.figures) if cfg.figures else None
    with tempfile.TemporaryDirectory() as tmp:
        details, paths = _ours_details(ours, clean_rows, figures or Path(tmp))
        if cfg.shift_sources or cfg.fresh_shift_sources:
            paths["shift_examples"] = str((figures or Path(tmp)) / "shift_examples.png")
            _shift_examples(storage, cfg, rows, scores[0], paths["shift_examples"])
        result = EvaluationResult(cfg, scores, details, paths if figures else {}, models=models, enrolment=enrolment)
        with mlflow.start_run(run_name=f"evaluate-{cfg.name}") as run:
            mlflow.set_tags(
                {
                    "model": cfg.model,
                    "openset_model": str(cfg.openset_model),
                    **{f"scored.{role.replace(' ', '_')}": uri for role, uri in models.items()},
                }
            )
            mlflow.log_params(
                {
                    "sources": ",".join(cfg.sources),
                    "held_out": ",".join(cfg.held_out_sources),
                    "conditions": ",".join(c.name for c in robust.conditions),
                }
            )
            mlflow.log_metrics(
                {
                    **_flat_metrics(scores),
                    **{
                        f"enrolment.k{r['shots']}.{m}": v
                        for r in enrolment
                        for m, v in r.items()
                        if isinstance(v, float)
                    },
                }
            )
            mlflow.log_text(format_evaluation(result), "evaluation.md")
            mlflow.log_dict(details, "ours_details.json")
            for path in paths.values():
                mlflow.log_artifact(path, "figures")
            result.mlflow_run_id = run.info.run_id
    return result


def _enrolment(
    storage: Storage, cfg: EvaluateConfig, open_model: LoadedAttributor, closed_model: LoadedAttributor, rows: RowCache
) -> list[dict[str, Any]]:
    """The open-set instance enrols each held-out source (family: the closed-set model's) from ``enrol_shots`` of
    its train rows; only its own columns of those sources' train rows are read."""
    families = closed_model.calibration.families
    for source in cfg.held_out_sources:
        check_names(open_model, source, families[source])
    columns = list(OursMethod(open_model).columns)
    train = load_eval_rows(storage, cfg.features, columns, cfg.held_out_sources, cfg.train_split)
    if train.reference_id != rows.reference_id:
        raise ValueError(
            f"{cfg.features} holds vectors of reference {train.reference_id!r}; the attributors were "
            f"trained on {rows.reference_id!r}"
        )
    return score_enrolment(
        open_model,
        train,
        rows.get(cfg.features, cfg.sources, cfg.test_split),
        cfg.held_out_sources,
        families,
        cfg.enrol_shots,
        seed=ENROL_SEED,
    )


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _flat_metrics(scores: list[MethodScores]) -> dict[str, float]:
    out = {}
    for s in scores:
        key = _slug(s.name)
        for condition, metrics in s.conditions.items():
            out.update({f"{key}.{condition}.{m}": v for m, v in metrics.items() if np.isfinite(v)})
        for condition, metrics in s.open_set.items():
            out.update({f"{key}.open.{condition}.{m}": v for m, v in metrics.items()})
        out[f"{key}.mean_accuracy"] = s.mean_accuracy()
        if s.shift_architecture_accuracy is not None:
            out[f"{key}.shift_architecture_accuracy"] = s.shift_architecture_accuracy
        if s.fresh_shift_architecture_accuracy is not None:
            out[f"{key}.fresh_shift_architecture_accuracy"] = s.fresh_shift_architecture_accuracy
    return out


# ----- the report -----


def _pct(x: float | None) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def _models_text(cfg: EvaluateConfig, models: dict[str, str]) -> str:
    asked = {"closed set": cfg.model, "open set": cfg.openset_model}
    return (
        (
            " Ours: "
            + "; ".join(
                f"{role} `{uri}`" + (f" (`{asked[role]}`)" if asked[role] != uri else "")
                for role, uri in models.items()
            )
            + "."
        )
        if models
        else ""
    )


def format_decisions(details: dict[str, Any]) -> str:
    """Markdown: per known source, closed-set recall beside what the scan's open-set decision answers."""
    point = details["operating_point"]
    recall = {r["source"]: r["recall"] for r in details["per_source"]}
    head = f", generated head threshold {point['generated_threshold']:.3f}" if "generated_threshold" in point else ""
    lines = [
        f"Ours, clean, as users read it: the scan's open-set decision ({point['path']} path) at its operating point "
        f"(unknown threshold {point['threshold']:.4f}, set to accept {_pct(point['target_tpr'])} % of known "
        f"validation rows; family fallback at {point['family_threshold']:.2f}{head}). Correct: the decision names "
        "the image's source; unknown: turned away (unknown, a family fallback or generated, source unknown); "
        "other: another known source.",
        "",
        "| source | closed-set recall | decision correct | turned away as unknown | other source | test rows |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in details["decisions"]:
        closed = _pct(recall[r["source"]]) if r["source"] in recall else ""
        name = "**all**" if r["source"] == "all" else r["source"]
        lines.append(
            f"| {name} | {closed} | {_pct(r['correct'])} | {_pct(r['unknown'])} | {_pct(r['other'])} | {r['support']} |"
        )
    return "\n".join(lines)


def format_evaluation(result: EvaluationResult) -> str:
    """Markdown: ours against each baseline (closed set per condition, mean, shift, open set), then ours' details."""
    cfg, scores = result.config, result.scores
    conditions = [c.name for c in cfg.robustness.conditions]
    best = {c: max(s.conditions[c]["accuracy"] for s in scores) for c in conditions}
    fresh = bool(cfg.fresh_shift_sources)
    head = [
        "method",
        *conditions,
        "mean",
        "content shift (arch.)",
        *(["fresh shift (arch.)"] if fresh else []),
        "open-set AUROC",
        "OSCR",
        "twins (clean)",
    ]
    fresh_text = (
        f"; fresh shift = the same on {', '.join(cfg.fresh_shift_sources)}, shift copies added after "
        "the model was chosen"
        if fresh
        else ""
    )
    lines = [
        "Closed-set accuracy (%) on the held-out split of the "
        f"{len(cfg.sources)} sources, clean and with each perturbation applied to every class; content shift "
        f"= architecture-level accuracy on {', '.join(cfg.shift_sources) or 'none'}{fresh_text}; open set = "
        f"instances trained without {', '.join(cfg.held_out_sources) or 'none'}, clean test rows. **Bold**: "
        "best in its column." + _models_text(cfg, result.models),
        "",
        "| " + " | ".join(head) + " |",
        "|---" + "|---:" * (len(head) - 1) + "|",
    ]

    def bold(value: float | None, top: float | None) -> str:
        text = _pct(value)
        return f"**{text}**" if value is not None and top is not None and abs(value - top) < 1e-12 else text

    tops = {
        "mean": max(s.mean_accuracy() for s in scores),
        "shift": max((s.shift_architecture_accuracy or 0) for s in scores),
        "fresh": max((s.fresh_shift_architecture_accuracy or 0) for s in scores),
        "auroc": max((s.open_set.get("clean", {}).get("auroc", 0)) for s in scores),
        "oscr": max((s.open_set.get("clean", {}).get("oscr", 0)) for s in scores),
    }
    for s in scores:
        cells = [bold(s.conditions[c]["accuracy"], best[c]) for c in conditions]
        open_clean = s.open_set.get("clean", {})
        cells += [
            bold(s.mean_accuracy(), tops["mean"]),
            bold(s.shift_architecture_accuracy, tops["shift"]),
            *([bold(s.fresh_shift_architecture_accuracy, tops["fresh"])] if fresh else []),
            bold(open_clean.get("auroc"), tops["auroc"]),
            bold(open_clean.get("oscr"), tops["oscr"]),
            _pct(s.conditions["clean"].get("twin_accuracy")),
        ]
        lines.append(f"| {s.name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "AUROC and OSCR are shown x100. Test rows per source: "
        + "; ".join(
            f"{s.name}: clean {s.rows['clean'] // len(cfg.sources)}, perturbed "
            f"{next((s.rows[c] for c in conditions if c != 'clean'), 0) // len(cfg.sources)}"
            for s in scores
        )
        + ".",
    ]
    trained = [f"{s.name} {s.train_seconds:.0f} s" for s in scores if s.train_seconds]
    if trained:
        lines += [
            "",
            "Baseline training time on this machine (closed-set instance, measured when trained; a rerun "
            "reuses the trained baselines stored under a hash of their inputs): " + ", ".join(trained) + ".",
        ]
    ours = scores[0]
    if ours.shift_by_source:
        lines += [
            "",
            f"Content shift, {ours.name}, per shift copy (architecture-level accuracy; most frequent "
            "predicted architectures): "
            + "; ".join(
                f"{src} {_pct(v['architecture_accuracy'])} % ("
                + ", ".join(f"{n} {c}" for n, c in list(v["predicted"].items())[:3])
                + ")"
                for src, v in ours.shift_by_source.items()
            )
            + ".",
        ]
    lines += [
        "",
        f"Ours, clean: macro-F1 {_pct(ours.conditions['clean']['macro_f1'])} %, ECE "
        f"{ours.conditions['clean']['ece']:.4f}, FDR of the fingerprint codes "
        f"{result.ours_details['fingerprint_fdr']:.3f}. Open set under each condition (AUROC x100): "
        + ", ".join(f"{c} {_pct(v['auroc'])}" for c, v in ours.open_set.items())
        + ".",
        "",
        "| source | precision | recall | test rows |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['source']} | {_pct(r['precision'])} | {_pct(r['recall'])} | {r['support']} |"
        for r in result.ours_details["per_source"]
    ]
    if "decisions" in result.ours_details:
        lines += ["", format_decisions(result.ours_details)]
    if result.enrolment:
        lines += ["", format_enrolment(cfg.held_out_sources, ENROL_SEED, result.enrolment)]
    return "\n".join(lines)
