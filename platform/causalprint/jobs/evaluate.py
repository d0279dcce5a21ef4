"""``causalprint evaluate``: ours against the baselines on clean, perturbed, content-shifted and open-set data.
The engine is :mod:`causalprint.evaluation.evaluate_job`."""

from __future__ import annotations

from pathlib import Path

from causalprint.evaluation.evaluate_job import EvaluateJobConfig, EvaluationResult, format_evaluation, run_evaluation
from causalprint.jobs.spec import Section, doc_link

CONFIG = EvaluateJobConfig


def run(config: EvaluateJobConfig) -> EvaluationResult:
    return run_evaluation(config)


def describe(result: EvaluationResult) -> str:
    return format_evaluation(result)


def section(config: EvaluateJobConfig, result: EvaluationResult, preset: str, docs_dir: Path) -> Section:
    body = format_evaluation(result)
    if result.figures:
        body += "\n\n" + "\n".join(f"![{name}]({doc_link(docs_dir, path)})" for name, path in result.figures.items())
    # Keyed by the evaluation's name, so that another model scored under another name gets its own section.
    name = result.config.name
    title = "Attribution: ours against the baselines" + (f" (`{name}`)" if name != preset else "")
    return Section(f"evaluation-{name}", title, body)
