"""``causalprint evaluate-anonymization``: the anonymization judged against ours (white-box), an independently
trained copy of ours and the baselines (black-box), with naive removals at the same PSNR, forgery, a JPEG re-save
and the time per image. The engine is :mod:`causalprint.anonymization.evaluation`; this module also trains the
independent copy, with the train job's own code (:mod:`causalprint.jobs.train`), before the engine runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from causalprint.anonymization.evaluation import (
    AnonymizationEvalJobConfig,
    AnonymizationEvalResult,
    format_anonymization_eval,
    run_anonymization_eval,
)
from causalprint.config import StrictModel
from causalprint.jobs.spec import Section, doc_link


class IndependentCopy(StrictModel):
    """The copy of ours the optimiser never sees: the train preset that made ours, with another seed, registered
    under ``<model_name>-copy`` (never promoted). ``data`` replaces the preset's data section (another world's
    features); no ``train_preset``: no copy is trained."""

    train_preset: str | None = "demo"
    seed: int = Field(default=1, ge=0)
    data: dict[str, Any] | None = None
    surrogate_seeds: list[int] = Field(
        default_factory=list,
        description="more copies of the same preset with these seeds, registered under <model_name>-surrogate, "
        "that the optimiser reads beside ours (an ensemble for transfer); never the copy's seed",
    )

    @model_validator(mode="after")
    def _copy_never_seen(self) -> IndependentCopy:
        if self.seed in self.surrogate_seeds:
            raise ValueError(
                f"surrogate_seeds {self.surrogate_seeds} include the independent copy's seed {self.seed}: the copy "
                "must be one the optimiser never reads"
            )
        return self


class EvaluateAnonymizationJobConfig(AnonymizationEvalJobConfig):
    independent_copy: IndependentCopy = IndependentCopy()


CONFIG = EvaluateAnonymizationJobConfig


def train_copy(config: EvaluateAnonymizationJobConfig, seed: int | None = None, role: str = "copy") -> str | None:
    """Train (or resume) the independent copy (or, with ``role`` surrogate, a surrogate of that ``seed``) and
    return its registered version's URI."""
    from causalprint.jobs import train as train_job
    from causalprint.presets import load_preset

    spec = config.independent_copy
    if spec.train_preset is None:
        return None
    seed = spec.seed if seed is None else seed
    tree = load_preset("train", spec.train_preset)
    if spec.data is not None:
        tree["data"] = spec.data
    tree["name"] = f"{tree.get('name', spec.train_preset)}-{role}-seed{seed}"
    tree["model_name"] = f"{tree.get('model_name', 'causalprint-attributor')}-{role}"
    tree["promote"] = False
    tree.setdefault("train", {})["seed"] = seed
    tree.update(
        storage=config.storage.model_dump(mode="json"),
        ray=config.ray.model_dump(mode="json"),
        mlflow=config.mlflow.model_dump(mode="json"),
    )
    summary = train_job.run(train_job.CONFIG.model_validate(tree))
    return str(summary["model"])


def run(config: EvaluateAnonymizationJobConfig) -> AnonymizationEvalResult:
    copy = train_copy(config) if config.evaluate.copy_model is None else config.evaluate.copy_model
    surrogates = config.evaluate.surrogate_models or [
        uri
        for seed in config.independent_copy.surrogate_seeds
        if (uri := train_copy(config, seed, role="surrogate")) is not None
    ]
    evaluate = config.evaluate.model_copy(update={"copy_model": copy, "surrogate_models": surrogates})
    return run_anonymization_eval(config.model_copy(update={"evaluate": evaluate}))


def describe(result: AnonymizationEvalResult) -> str:
    return format_anonymization_eval(result)


def section(
    config: EvaluateAnonymizationJobConfig, result: AnonymizationEvalResult, preset: str, docs_dir: Path
) -> Section:
    body = format_anonymization_eval(result)
    if result.figure:
        body += f"\n\n![accuracy vs PSNR]({doc_link(docs_dir, result.figure)})"
    name = result.config.name
    return Section(
        f"anonymization-evaluation-{name}", f"Anonymization judged against every attributor (`{name}`)", body
    )
