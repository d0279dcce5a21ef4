"""``causalprint ablate``: the attributor retrained with one part taken away (input columns, decoupling terms),
each variant scored on the evaluation's rows; the engine is :mod:`causalprint.evaluation.ablation`."""

from __future__ import annotations

from pathlib import Path

from causalprint.evaluation.ablation import (
    AblateJobConfig,
    AblationResult,
    AblationVariant,
    format_ablation,
    run_ablation,
)
from causalprint.jobs.spec import Section, doc_link

CONFIG = AblateJobConfig


def train_variant(job: AblateJobConfig, preset: str, variant: AblationVariant, suffix: str) -> tuple[str, float]:
    """Train (or resume) ``variant`` of the train preset with the train job's own code, registered under
    ``<model_name>-ablation<suffix>`` and never promoted; its version's URI and the seconds it took."""
    from causalprint.jobs import train as train_job
    from causalprint.presets import load_preset

    tree = load_preset("train", preset)
    if variant.columns is not None:
        tree.setdefault("data", {})["columns"] = variant.columns
    tree["model"] = {**tree.get("model", {}), **variant.model}
    tree["name"] = f"{tree.get('name', preset)}-ablation-{variant.name}{suffix}"
    tree["model_name"] = f"{tree.get('model_name', 'causalprint-attributor')}-ablation{suffix}"
    tree["promote"] = False
    tree.update(
        storage=job.storage.model_dump(mode="json"),
        ray=job.ray.model_dump(mode="json"),
        mlflow=job.mlflow.model_dump(mode="json"),
    )
    summary = train_job.run(train_job.CONFIG.model_validate(tree))
    return str(summary["model"]), float(summary["wall_seconds"])


def run(config: AblateJobConfig) -> AblationResult:
    return run_ablation(config, train_variant)


def describe(result: AblationResult) -> str:
    return format_ablation(result)


def section(config: AblateJobConfig, result: AblationResult, preset: str, docs_dir: Path) -> Section:
    body = format_ablation(result)
    if result.figure:
        body += f"\n\n![accuracy per condition]({doc_link(docs_dir, result.figure)})"
    name = result.config.name
    return Section(f"ablation-{name}", f"Ablations of the attributor (`{name}`)", body)
