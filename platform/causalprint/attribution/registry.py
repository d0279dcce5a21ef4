"""Attributors in the MLflow model registry: register a trained model as a version, gate its promotion, load it.

A registered version is an MLflow run of its own (a child of the training run, when there is one) whose
artifacts are::

    attributor/                       what load_attributor() needs, all JSON + safetensors (never a pickle)
        model/                        CausalDecoupler.save_pretrained: config.json, model.safetensors, extras.json
        calibration.json              temperatures, unknown thresholds, label map, family map
        prototypes.safetensors/.json  class prototypes of the fingerprint codes
        requirements.json             reference_id and input columns the vectors must come from
        metrics.json                  the evaluation the gate reads
    report/                           for people: confusion_matrix.png, fingerprints.png, fdr.md, fdr.json

and whose metrics are the evaluation's. Aliases: ``candidate`` is the latest registered version,
``champion`` the one that passed :func:`promote_if_better`. Load with
``load_attributor("models:/causalprint-attributor@champion")``.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from causalprint.attribution.model import CausalDecoupler, Codes
from causalprint.attribution.openset import Attribution
from causalprint.attribution.training import (
    KIND_TAG,
    MODEL_DIR,
    RUN_TAG,
    Calibration,
    TrainJobConfig,
    TrainResult,
    run_training,
)
from causalprint.config import StrictModel
from causalprint.evaluation.separability import fisher_discriminant_ratio
from causalprint.plots import confusion_matrix_png, fingerprint_plot_png

log = logging.getLogger(__name__)

__all__ = [
    "fdr_table", "format_fdr", "format_training", "GateConfig", "load_attributor", "LoadedAttributor",
    "log_version", "MODEL_NAME", "parse_model_uri", "per_source_recall", "promote_if_better", "PromotionDecision",
    "register_version", "RegisteredVersion", "resolve_version", "save_attributor", "train_and_register",
    "TrainRegisterJobConfig", "write_report",
]

MODEL_NAME = "causalprint-attributor"
ARTIFACT_PATH = "attributor"
REPORT_PATH = "report"
REQUIREMENTS_NAME = "requirements.json"
METRICS_NAME = "metrics.json"
CANDIDATE, CHAMPION = "candidate", "champion"


# ----- the attributor folder -----

def save_attributor(result: TrainResult, directory: str | Path) -> Path:
    """Write the folder that :meth:`LoadedAttributor.from_folder` reads (layout in the module docstring)."""
    return LoadedAttributor(model=result.model, calibration=result.calibration, requirements=result.requirements,
                            metrics=result.metrics).save(directory)


@dataclass
class LoadedAttributor:
    """A decoupler with its calibration: raw vectors (the ``requirements``' columns, concatenated) in,
    open-set decisions out."""

    model: CausalDecoupler
    calibration: Calibration
    requirements: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, directory: str | Path) -> LoadedAttributor:
        directory = Path(directory)
        return cls(model=CausalDecoupler.from_pretrained(directory / MODEL_DIR),
                   calibration=Calibration.load(directory),
                   requirements=json.loads((directory / REQUIREMENTS_NAME).read_text()),
                   metrics=json.loads((directory / METRICS_NAME).read_text()))

    def save(self, directory: str | Path) -> Path:
        """Write the folder that :meth:`from_folder` reads (layout in the module docstring)."""
        directory = Path(directory)
        self.model.save_pretrained(directory / MODEL_DIR)
        self.calibration.save(directory)
        (directory / REQUIREMENTS_NAME).write_text(json.dumps(self.requirements, indent=2, sort_keys=True))
        (directory / METRICS_NAME).write_text(json.dumps(self.metrics, indent=2, sort_keys=True))
        return directory

    def check_inputs(self, reference_id: str, columns: Sequence[str]) -> None:
        """Refuse vectors from another reference model or other feature columns than the model was trained on."""
        want_ref, want_cols = self.requirements["reference_id"], list(self.requirements["columns"])
        if reference_id != want_ref or list(columns) != want_cols:
            raise ValueError(f"this attributor needs vectors of reference {want_ref!r}, columns {want_cols}; "
                             f"got reference {reference_id!r}, columns {list(columns)}")

    def probabilities(self, X: np.ndarray, source: Literal["logits", "prototypes"] = "logits") -> np.ndarray:
        """Calibrated class probabilities ``[N, K]`` (columns: ``calibration.class_names``)."""
        codes = self.model.predict_codes(X)
        return self.calibration.attributor(source).probabilities(codes=codes.fp, logits=codes.logits)

    def predict(self, X: np.ndarray, source: Literal["logits", "prototypes"] = "logits") -> list[Attribution]:
        """One open-set decision per row of raw vectors ``X`` ``[N, D]``."""
        codes = self.model.predict_codes(X)
        return self.calibration.attributor(source).predict(codes=codes.fp, logits=codes.logits)

    def architectures_of(self, codes: Codes) -> np.ndarray | None:
        """Each row's most likely architecture (:meth:`CausalDecoupler.architectures_of`), its class logits at
        the logits path's calibrated temperature whatever the decision path (the prototype path's classes may
        include enrolled sources, whose architecture the model does not know); None when the model records no
        class architectures. The evaluation asks here, and so does the scan for the rows its decision leaves
        unknown (a row that names a source names that source's architecture)."""
        return self.model.architectures_of(codes, temperature=self.calibration.temperature)


def resolve_version(name: str, *, version: str | None = None, alias: str | None = None,
                    tracking_uri: str | None = None) -> tuple[str, str]:
    """``(version, artifact URI)`` of the registered version ``version`` of ``name``, or of the one ``alias``
    points at now. The registry is the one in the tracking store ``tracking_uri`` (MLflow would otherwise use its
    global registry URI)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if alias:
        version = str(client.get_model_version_by_alias(name, alias).version)
    return str(version), client.get_model_version_download_uri(name, version)


_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of ``models:/<name>/<version>`` (alias None) or ``models:/<name>@<alias>``
    (version None); a ValueError names the two forms for anything else."""
    match = _MODELS_URI.match(uri)
    if match is None:
        raise ValueError(f"{uri!r} is not a registered model URI: use models:/<name>@<alias> or "
                         f"models:/<name>/<version>")
    return match["name"], match["version"], match["alias"]


def pin_model_uri(uri: str, tracking_uri: str | None = None) -> str:
    """``models:/<name>@<alias>`` -> ``models:/<name>/<version>`` it points at now; other URIs unchanged."""
    if not uri.startswith("models:/"):
        return uri
    name, version, alias = parse_model_uri(uri)
    return f"models:/{name}/{resolve_version(name, version=version, alias=alias, tracking_uri=tracking_uri)[0]}"


def load_attributor(uri: str, dst: str | Path | None = None, tracking_uri: str | None = None) -> LoadedAttributor:
    """Download ``uri`` (``models:/causalprint-attributor@champion``, ``models:/<name>/<version>``, or a
    ``runs:/<id>/attributor`` URI) and rebuild it with our own loaders."""
    import mlflow

    if uri.startswith("models:/") and tracking_uri:
        name, version, alias = parse_model_uri(uri)
        _, uri = resolve_version(name, version=version, alias=alias, tracking_uri=tracking_uri)
    local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst) if dst else None,
                                                tracking_uri=tracking_uri)
    return LoadedAttributor.from_folder(local)


# ----- report artifacts -----

def fdr_table(result: TrainResult) -> list[dict[str, Any]]:
    """Fisher discriminant ratio of the known test rows by source: each input space (standardised with the train
    statistics), their concatenation, and the codes ``z_fp`` (should be high) and ``z_c`` (should be low)."""
    data = result.data
    x, y = (data.x_test, data.y_test) if len(data.y_test) else (data.x_val, data.y_val)
    mean, std = data.x_train.mean(0), np.maximum(data.x_train.std(0), 1e-6)
    spaces = {**data.column_slices(), "input (all columns)": slice(0, data.input_dim)}
    rows = [{"space": name, "dim": s.stop - s.start,
             "fdr": fisher_discriminant_ratio(((x - mean) / std)[:, s], y)} for name, s in spaces.items()]
    codes = result.model.predict_codes(x)
    rows.append({"space": "z_fp (fingerprint code)", "dim": codes.fp.shape[1],
                 "fdr": fisher_discriminant_ratio(codes.fp, y)})
    rows.append({"space": "z_c (content code)", "dim": codes.content.shape[1],
                 "fdr": fisher_discriminant_ratio(codes.content, y)})
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
        confusion_matrix_png(data.y_test, result.model.predict(data.x_test), names,
                             directory / "confusion_matrix.png")
        x = np.concatenate([data.x_test, data.x_unknown]) if len(data.x_unknown) else data.x_test
        labels = [names[i] for i in data.y_test] + [f"{s} (unknown)" for s in data.unknown_sources]
        fingerprint_plot_png(result.model.predict_codes(x).fp, labels, directory / "fingerprints.png")
    rows = fdr_table(result)
    (directory / "fdr.md").write_text(format_fdr(rows))
    (directory / "fdr.json").write_text(json.dumps(rows, indent=2))
    return directory


# ----- registration -----

@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    source: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _client(client: Any, tracking_uri: str | None) -> Any:
    import mlflow

    return client if client is not None else mlflow.MlflowClient(tracking_uri=tracking_uri)


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def register_version(result: TrainResult, *, model_name: str = MODEL_NAME, alias: str = CANDIDATE,
                     client: Any = None, experiment: str = "causalprint") -> RegisteredVersion:
    """Log ``result`` as a new MLflow run (artifacts: the attributor folder and the report; metrics: the
    evaluation), register it as a new version of ``model_name`` and point ``alias`` at it.

    The run is a child of the training run when ``result.mlflow_run_id`` is set (its experiment too), else a
    run of ``experiment`` (configure MLflow first, :func:`~causalprint.tracking.mlflow_setup.configure_mlflow`, so
    that a new experiment keeps its artifacts in storage). One run per version keeps every version's files
    immutable.
    """
    client = _client(client, result.tracking_uri)
    tags = {RUN_TAG: result.name, KIND_TAG: "attributor-version"}
    if result.mlflow_run_id:
        experiment_id = client.get_run(result.mlflow_run_id).info.experiment_id
        tags["mlflow.parentRunId"] = result.mlflow_run_id
    else:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    params = {"train_name": result.name, "features": result.features, "reference_id": result.data.reference_id,
              "columns": ",".join(result.data.columns), "class_names": ",".join(result.data.class_names),
              "checkpoint": result.checkpoint_uri, "epochs_completed": result.epochs_completed}

    def write(folder: Path) -> None:
        save_attributor(result, folder / ARTIFACT_PATH)
        write_report(result, folder / REPORT_PATH)

    return log_version(
        client, model_name=model_name, experiment_id=experiment_id, run_name=f"register-{result.name}", tags=tags,
        params=params, metrics=result.metrics, write=write, alias=alias,
        version_tags={"reference_id": result.data.reference_id, "columns": json.dumps(result.data.columns),
                      "train_name": result.name},
        description=f"training {result.name!r} on {result.features}, epoch checkpoint {result.checkpoint_uri}")


def log_version(client: Any, *, model_name: str, experiment_id: str, run_name: str, tags: Mapping[str, str],
                params: Mapping[str, Any], metrics: Mapping[str, float], write: Callable[[Path], None],
                version_tags: Mapping[str, str], description: str, alias: str) -> RegisteredVersion:
    """One MLflow run holding what ``write(folder)`` puts in ``folder/attributor`` (and ``folder/report``, if
    written), ``params`` and ``metrics``; registered as a new version of ``model_name`` with ``alias``."""
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException
    from mlflow.utils.time import get_current_time_millis

    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    run_id = run.info.run_id
    try:
        now = get_current_time_millis()
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                         params=[Param(k, str(v)[:500]) for k, v in params.items()])
        with tempfile.TemporaryDirectory() as tmp:
            write(Path(tmp))
            for path in (ARTIFACT_PATH, REPORT_PATH):
                if (Path(tmp) / path).is_dir():
                    client.log_artifacts(run_id, str(Path(tmp) / path), path)
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")

    try:
        client.get_registered_model(model_name)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        client.create_registered_model(model_name, description="causalprint open-set source attributor")
    source = f"{run.info.artifact_uri}/{ARTIFACT_PATH}"
    version = client.create_model_version(model_name, source, run_id=run_id, tags=dict(version_tags),
                                          description=description)
    client.set_registered_model_alias(model_name, alias, version.version)
    log.info("registered %s version %s (alias %s) from run %s", model_name, version.version, alias, run_id)
    return RegisteredVersion(model_name, str(version.version), run_id, source)


# ----- the evaluation gate -----

class GateConfig(StrictModel):
    """When a version may become champion: every ``minimum``/``maximum`` bound holds, and for every ``compare``
    metric it is no worse than the current champion (within ``tolerance``)."""

    minimum: dict[str, float] = Field(default_factory=lambda: {"test_accuracy": 0.5})
    maximum: dict[str, float] = Field(default_factory=dict, description="e.g. {test_ece: 0.1}")
    compare: dict[str, Literal["higher", "lower"]] = Field(
        default_factory=lambda: {"test_accuracy": "higher"}, description="metric -> which direction is better")
    tolerance: float = Field(default=0.0, ge=0, description="allowed regression against the champion")


@dataclass(frozen=True)
class PromotionDecision:
    """What the gate decided for ``version``; ``reasons`` lists every check, passed or failed."""

    promoted: bool
    version: str
    champion_before: str | None
    reasons: list[str]


def promote_if_better(client: Any, version: str | int | RegisteredVersion,
                      metrics: Mapping[str, float] | None = None, thresholds: GateConfig | None = None, *,
                      model_name: str = MODEL_NAME, alias: str = CHAMPION) -> PromotionDecision:
    """Move ``alias`` to ``version`` only if it passes ``thresholds`` and is no worse than the current holder of
    ``alias`` (whose metrics are read from its run). ``metrics=None`` reads the version's own run metrics.
    The decision is also recorded as tags on the version (``gate.decision``, ``gate.reasons``)."""
    gate = thresholds or GateConfig()
    client = _client(client, None)
    number = version.version if isinstance(version, RegisteredVersion) else str(version)
    candidate = client.get_model_version(model_name, number)
    values = dict(metrics) if metrics is not None else dict(client.get_run(candidate.run_id).data.metrics)
    reasons: list[str] = []
    passed = True

    def check(ok: bool, text: str) -> None:
        nonlocal passed
        passed &= ok
        reasons.append(("ok: " if ok else "FAIL: ") + text)

    for key, bound in gate.minimum.items():
        if key not in values:
            check(False, f"{key} is missing (minimum {bound})")
        else:
            check(values[key] >= bound, f"{key}={values[key]:.4f} >= minimum {bound}")
    for key, bound in gate.maximum.items():
        if key not in values:
            check(False, f"{key} is missing (maximum {bound})")
        else:
            check(values[key] <= bound, f"{key}={values[key]:.4f} <= maximum {bound}")

    held_by = client.get_registered_model(model_name).aliases.get(alias)
    champion = client.get_model_version(model_name, str(held_by)) if held_by is not None else None
    before = str(champion.version) if champion is not None else None
    if champion is None:
        reasons.append(f"ok: no {alias} yet")
    elif before == number:
        check(False, f"version {number} already is {alias}")
    else:
        held = client.get_run(champion.run_id).data.metrics
        margin = f", within {gate.tolerance:g}" if gate.tolerance else ""
        for key, direction in gate.compare.items():
            if key not in values:
                check(False, f"{key} is missing, cannot compare with {alias} v{before}")
            elif key not in held:
                reasons.append(f"ok: {alias} v{before} has no {key}; not compared")
            elif direction == "higher":
                check(values[key] >= held[key] - gate.tolerance,
                      f"{key}={values[key]:.4f} vs {alias} v{before} {held[key]:.4f} (higher is better{margin})")
            else:
                check(values[key] <= held[key] + gate.tolerance,
                      f"{key}={values[key]:.4f} vs {alias} v{before} {held[key]:.4f} (lower is better{margin})")

    if passed:
        client.set_registered_model_alias(model_name, alias, number)
    client.set_model_version_tag(model_name, number, "gate.decision", "promoted" if passed else "refused")
    client.set_model_version_tag(model_name, number, "gate.reasons", json.dumps(reasons)[:4000])
    log.info("gate for %s v%s: %s; %s", model_name, number, "promoted" if passed else "refused", reasons)
    return PromotionDecision(passed, number, before, reasons)


# ----- the job: train, register, gate -----

class TrainRegisterJobConfig(TrainJobConfig):
    """A training job (:class:`TrainJobConfig`) followed by registration and, if ``promote``, the gate."""

    model_name: str = Field(default=MODEL_NAME, min_length=1)
    promote: bool = True
    gate: GateConfig = GateConfig()


def train_and_register(job: TrainRegisterJobConfig) -> dict[str, Any]:
    """Train (or resume) ``job``, register the result as a new ``candidate`` version and run the gate for
    ``champion``; returns a summary for the command line."""
    import time

    import mlflow

    start = time.perf_counter()
    result = run_training(job)
    client = mlflow.MlflowClient(tracking_uri=result.tracking_uri)
    version = register_version(result, model_name=job.model_name, client=client, experiment=job.mlflow.experiment)
    summary: dict[str, Any] = {
        "name": job.name, "model": version.uri, "run_id": version.run_id, "checkpoint": result.checkpoint_uri,
        "epochs": result.epochs_completed, "metrics": {k: round(v, 4) for k, v in result.metrics.items()},
        "data": result.data.summary(), "columns": result.data.columns, "test_recall": per_source_recall(result),
        "epoch_seconds": [round(h["epoch_seconds"], 3) for h in result.history if "epoch_seconds" in h]}
    if job.promote:
        decision = promote_if_better(client, version, thresholds=job.gate, model_name=job.model_name)
        summary.update(promoted=decision.promoted, champion_before=decision.champion_before,
                       gate=decision.reasons)
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)
    return summary


def per_source_recall(result: TrainResult) -> dict[str, float]:
    """Per class, the share of its test rows that the model's most likely source gets right (the closed-set
    decision behind ``test_accuracy``), in class order."""
    data = result.data
    if not len(data.y_test):
        return {}
    predicted = result.model.predict(data.x_test)
    return {name: round(float((predicted[data.y_test == i] == i).mean()), 4)
            for i, name in enumerate(data.class_names) if (data.y_test == i).any()}


def format_training(summary: Mapping[str, Any]) -> str:
    """Markdown of one training job's summary (:func:`train_and_register`): data, time, metrics, gate."""
    data, metrics, seconds = summary["data"], summary["metrics"], summary.get("epoch_seconds", [])
    arch_only = data.get("architecture_only_rows", 0)
    of_which = f", {arch_only} of them of architecture-only sources" if arch_only else ""
    lines = [f"Registered as `{summary['model']}`; {summary['epochs']} epochs on {data['train_rows']} train rows "
             f"({data['classes']} classes{of_which}, input {data['input_dim']} values: {', '.join(summary['columns'])}); "
             f"{data['val_rows']} validation, {data['test_rows']} test and {data['unknown_rows']} unknown rows.", ""]
    if seconds:
        lines.append(f"Training time on this machine: {sum(seconds):.0f} s for {len(seconds)} epochs "
                     f"({sum(seconds) / len(seconds):.1f} s per epoch, one Ray Train worker); the whole command "
                     f"(loading, training, calibration, registration) took {summary['wall_seconds']:.0f} s.")
    else:
        lines.append(f"The run's checkpoints were already complete: calibrated, evaluated and registered in "
                     f"{summary['wall_seconds']:.0f} s.")
    keys = [k for k in ("test_accuracy", "test_proto_accuracy", "test_ece", "test_known_accept", "test_auroc",
                        "test_oscr", "test_unknown_reject", "test_proto_auroc", "test_proto_oscr",
                        "test_proto_unknown_reject", "chosen_epoch") if k in metrics]
    lines += ["", "| metric | value |", "|---|---:|"] + [f"| {k} | {metrics[k]:.4f} |" for k in keys]
    if summary.get("test_recall"):
        lines += ["", "Test recall per source (closed set): " + ", ".join(
            f"{name} {recall:.3f}" for name, recall in summary["test_recall"].items()) + "."]
    if "promoted" in summary:
        lines += ["", f"Gate: {'promoted to champion' if summary['promoted'] else 'refused'} "
                      f"({'; '.join(summary['gate'])})."]
    return "\n".join(lines)
