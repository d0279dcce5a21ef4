"""``causalprint train``: train (or resume) a run, register the result as the ``candidate`` version and
run the gate for ``champion``; and the Markdown of its summary."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from pydantic import Field

from causalprint.attribution.training.config import TrainJobConfig
from causalprint.attribution.training.driver import TrainResult, run_training
from causalprint.jobs.spec import Section
from causalprint.tracking.gate import GateConfig, promote_if_better
from causalprint.tracking.versions import MODEL_NAME, register_version

__all__ = ["describe", "per_source_recall", "run", "section", "TrainRegisterJobConfig"]


class TrainRegisterJobConfig(TrainJobConfig):
    """A training job (:class:`TrainJobConfig`) followed by registration and, if ``promote``, the gate."""

    model_name: str = Field(default=MODEL_NAME, min_length=1)
    promote: bool = True
    gate: GateConfig = GateConfig()


CONFIG = TrainRegisterJobConfig


class TrainSummary(TypedDict):
    """What a training job returns: the registered version, its data and metrics, and the gate's decision."""

    name: str
    model: str  # models:/<name>/<version>
    run_id: str
    checkpoint: str
    epochs: int
    metrics: dict[str, float]
    data: dict[str, Any]  # AttributionData.summary(): rows per split, classes, input size
    columns: list[str]
    test_recall: dict[str, float]
    epoch_seconds: list[float]
    wall_seconds: float
    promoted: NotRequired[bool]  # the gate's keys, when the job asked for it (promote)
    champion_before: NotRequired[str | None]
    gate: NotRequired[list[str]]


def run(job: TrainRegisterJobConfig) -> TrainSummary:
    """Train (or resume) ``job``, register the result as a new ``candidate`` version and run the gate for
    ``champion``; returns a summary for the command line."""
    import mlflow

    start = time.perf_counter()
    result = run_training(job)
    client = mlflow.MlflowClient(tracking_uri=result.tracking_uri)
    version = register_version(result, model_name=job.model_name, client=client, experiment=job.mlflow.experiment)
    summary: TrainSummary = {
        "name": job.name,
        "model": version.uri,
        "run_id": version.run_id,
        "checkpoint": result.checkpoint_uri,
        "epochs": result.epochs_completed,
        "metrics": {k: round(v, 4) for k, v in result.metrics.items()},
        "data": result.data.summary(),
        "columns": result.data.columns,
        "test_recall": per_source_recall(result),
        "epoch_seconds": [round(h["epoch_seconds"], 3) for h in result.history if "epoch_seconds" in h],
        "wall_seconds": 0.0,
    }
    if job.promote:
        decision = promote_if_better(client, version, thresholds=job.gate, model_name=job.model_name)
        summary["promoted"] = decision.promoted
        summary["champion_before"] = decision.champion_before
        summary["gate"] = decision.reasons
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)
    return summary


def per_source_recall(result: TrainResult) -> dict[str, float]:
    """Per class, the share of its test rows that the model's most likely source gets right (the closed-set
    decision behind ``test_accuracy``), in class order."""
    data = result.data
    if not len(data.y_test):
        return {}
    predicted = result.model.predict(data.x_test)
    return {
        name: round(float((predicted[data.y_test == i] == i).mean()), 4)
        for i, name in enumerate(data.class_names)
        if (data.y_test == i).any()
    }


def describe(summary: Mapping[str, Any]) -> str:
    """Markdown of one training job's summary (:func:`run`): data, time, metrics, gate."""
    data, metrics, seconds = summary["data"], summary["metrics"], summary.get("epoch_seconds", [])
    arch_only = data.get("architecture_only_rows", 0)
    of_which = f", {arch_only} of them of architecture-only sources" if arch_only else ""
    lines = [
        f"Registered as `{summary['model']}`; {summary['epochs']} epochs on {data['train_rows']} train rows "
        f"({data['classes']} classes{of_which}, input {data['input_dim']} values: {', '.join(summary['columns'])}); "
        f"{data['val_rows']} validation, {data['test_rows']} test and {data['unknown_rows']} unknown rows.",
        "",
    ]
    if seconds:
        lines.append(
            f"Training time on this machine: {sum(seconds):.0f} s for {len(seconds)} epochs "
            f"({sum(seconds) / len(seconds):.1f} s per epoch, one Ray Train worker); the whole command "
            f"(loading, training, calibration, registration) took {summary['wall_seconds']:.0f} s."
        )
    else:
        lines.append(
            f"The run's checkpoints were already complete: calibrated, evaluated and registered in "
            f"{summary['wall_seconds']:.0f} s."
        )
    keys = [
        k
        for k in (
            "test_accuracy",
            "test_proto_accuracy",
            "test_ece",
            "test_known_accept",
            "test_auroc",
            "test_oscr",
            "test_unknown_reject",
            "test_proto_auroc",
            "test_proto_oscr",
            "test_proto_unknown_reject",
            "chosen_epoch",
        )
        if k in metrics
    ]
    lines += ["", "| metric | value |", "|---|---:|"] + [f"| {k} | {metrics[k]:.4f} |" for k in keys]
    if summary.get("test_recall"):
        lines += [
            "",
            "Test recall per source (closed set): "
            + ", ".join(f"{name} {recall:.3f}" for name, recall in summary["test_recall"].items())
            + ".",
        ]
    if "promoted" in summary:
        lines += [
            "",
            f"Gate: {'promoted to champion' if summary['promoted'] else 'refused'} ({'; '.join(summary['gate'])}).",
        ]
    return "\n".join(lines)


def exit_code(summary: Mapping[str, Any]) -> int:
    """1 when the gate refused the model (``promote`` asked for and not given): the champion is still the older
    version, or there is none, and a pipeline that trains then deploys must stop there."""
    return 1 if summary.get("promoted") is False else 0


def section(config: TrainRegisterJobConfig, summary: Mapping[str, Any], preset: str, docs_dir: Path) -> Section:
    return Section(f"training-{config.name}", f"Training `{config.name}` on Ray Train", describe(summary))
