"""The promotion gate: a registered version becomes ``champion`` only if it meets the thresholds, answers the
champion's question (the same classes and input columns) and is no worse than the champion.

The question a version answers is its :class:`Task`: the sources it can name (its trained classes and any
enrolled source) and the feature columns it reads, both compared as sets. Their order is each version's own
(the probability columns, the concatenation of its input vector) and travels with it: the scan report names its
classes, and a scan rebuilds each version's input from that version's requirements. A candidate whose task
differs is refused, with what differs, unless ``gate.replace_task`` says that it replaces the champion's task;
then its metrics are not compared with the champion's, which measure another task.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from causalprint.attribution.calibration import CALIBRATION_NAME
from causalprint.config import StrictModel
from causalprint.tracking.artifacts import ARTIFACT_PATH, REQUIREMENTS_NAME
from causalprint.tracking.versions import CHAMPION, MODEL_NAME, RegisteredVersion, mlflow_client

log = logging.getLogger(__name__)

__all__ = ["GateConfig", "promote_if_better", "PromotionDecision", "Task", "task_differences", "version_task"]

PROTOTYPES_NAME = "prototypes.json"  # written by Prototypes.save


def _default_compare() -> dict[str, Literal["higher", "lower"]]:
    return {"test_accuracy": "higher"}


class GateConfig(StrictModel):
    """When a version may become champion: every ``minimum``/``maximum`` bound holds, it has the champion's
    classes and input columns (unless ``replace_task``), and for every ``compare`` metric it is no worse than the
    current champion (within ``tolerance``)."""

    minimum: dict[str, float] = Field(default_factory=lambda: {"test_accuracy": 0.5})
    maximum: dict[str, float] = Field(default_factory=dict, description="e.g. {test_ece: 0.1}")
    compare: dict[str, Literal["higher", "lower"]] = Field(
        default_factory=_default_compare, description="metric -> which direction is better"
    )
    tolerance: float = Field(default=0.0, ge=0, description="allowed regression against the champion")
    replace_task: bool = Field(
        default=False,
        description="promote a version whose classes (source names, as a set) or input columns "
        "(feature columns, as a set) differ from the champion's, replacing the task "
        "every later scan answers; its metrics are then not compared with the "
        "champion's. False: such a version is refused, with what differs",
    )


@dataclass(frozen=True)
class PromotionDecision:
    """What the gate decided for ``version``; ``reasons`` lists every check, passed or failed."""

    promoted: bool
    version: str
    champion_before: str | None
    reasons: list[str]


@dataclass(frozen=True)
class Task:
    """The question a version answers: the sources it can name and the feature columns it reads."""

    classes: frozenset[str]
    columns: frozenset[str]


def version_task(client: Any, model_name: str, version: str) -> Task:
    """The :class:`Task` of a registered version, from its attributor folder: the classes of its calibration
    and of its prototypes (enrolled sources included), and the columns of its requirements."""
    run_id = client.get_model_version(model_name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:

        def read(name: str) -> Any:
            return json.loads(Path(client.download_artifacts(run_id, f"{ARTIFACT_PATH}/{name}", tmp)).read_text())

        classes = {*read(CALIBRATION_NAME)["class_names"], *map(str, read(PROTOTYPES_NAME)["labels"])}
        columns = read(REQUIREMENTS_NAME)["columns"]
    return Task(frozenset(classes), frozenset(columns))


def task_differences(candidate: Task, champion: Task) -> list[str]:
    """What differs between two tasks, one line per field (none: the same task)."""
    lines = []
    for what, mine, theirs in (
        ("classes", candidate.classes, champion.classes),
        ("input columns", candidate.columns, champion.columns),
    ):
        if mine != theirs:
            lines.append(f"{what} differ: the candidate lacks {sorted(theirs - mine)} and adds {sorted(mine - theirs)}")
    return lines


def promote_if_better(
    client: Any,
    version: str | int | RegisteredVersion,
    metrics: Mapping[str, float] | None = None,
    thresholds: GateConfig | None = None,
    *,
    model_name: str = MODEL_NAME,
    alias: str = CHAMPION,
) -> PromotionDecision:
    """Move ``alias`` to ``version`` only if it passes ``thresholds``, has the task of the current holder of
    ``alias`` (or ``thresholds.replace_task``) and is no worse than it (whose metrics are read from its run).
    ``metrics=None`` reads the version's own run metrics. The decision is also recorded as tags on the version
    (``gate.decision``, ``gate.reasons``)."""
    gate = thresholds or GateConfig()
    client = mlflow_client(client, None)
    number = version.version if isinstance(version, RegisteredVersion) else str(version)
    candidate = client.get_model_version(model_name, number)
    values = dict(metrics) if metrics is not None else dict(client.get_run(candidate.run_id).data.metrics)
    reasons: list[str] = []
    passed = True

    def check(ok: bool, text: str) -> None:
        nonlocal passed
        passed &= ok
        reasons.append(("ok: " if ok else "FAIL: ") + text)

    _check_bounds(gate, values, check)
    held_by = client.get_registered_model(model_name).aliases.get(alias)
    champion = client.get_model_version(model_name, str(held_by)) if held_by is not None else None
    before = str(champion.version) if champion is not None else None
    if champion is None:
        reasons.append(f"ok: no {alias} yet")
    elif before == number:
        check(False, f"version {number} already is {alias}")
    else:
        assert before is not None  # there is a champion in this branch
        held = f"{alias} v{before}"
        differences = task_differences(
            version_task(client, model_name, number), version_task(client, model_name, before)
        )
        for line in differences:
            if gate.replace_task:
                reasons.append(f"ok: {line} ({held}); gate.replace_task replaces its task")
            else:
                check(
                    False,
                    f"{line} ({held}): it answers another question; set gate.replace_task=true to "
                    f"replace the {alias}'s task",
                )
        if not differences:
            reasons.append(f"ok: the classes and input columns of {held}")
        if differences and gate.replace_task:
            reasons.append(f"ok: metrics not compared with {held}, which answers another question")
        else:
            _check_against(gate, values, client.get_run(champion.run_id).data.metrics, held, check)

    if passed:
        client.set_registered_model_alias(model_name, alias, number)
    client.set_model_version_tag(model_name, number, "gate.decision", "promoted" if passed else "refused")
    client.set_model_version_tag(model_name, number, "gate.reasons", json.dumps(reasons)[:4000])
    log.info("gate for %s v%s: %s; %s", model_name, number, "promoted" if passed else "refused", reasons)
    return PromotionDecision(passed, number, before, reasons)


def _check_bounds(gate: GateConfig, values: Mapping[str, float], check: Callable[[bool, str], None]) -> None:
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


def _check_against(
    gate: GateConfig,
    values: Mapping[str, float],
    held: Mapping[str, float],
    name: str,
    check: Callable[[bool, str], None],
) -> None:
    """Every ``compare`` metric of the candidate against the champion ``name``'s ``held`` metrics."""
    margin = f", within {gate.tolerance:g}" if gate.tolerance else ""
    for key, direction in gate.compare.items():
        if key not in values:
            check(False, f"{key} is missing, cannot compare with {name}")
        elif key not in held:
            check(True, f"{name} has no {key}; not compared")
        elif direction == "higher":
            check(
                values[key] >= held[key] - gate.tolerance,
                f"{key}={values[key]:.4f} vs {name} {held[key]:.4f} (higher is better{margin})",
            )
        else:
            check(
                values[key] <= held[key] + gate.tolerance,
                f"{key}={values[key]:.4f} vs {name} {held[key]:.4f} (lower is better{margin})",
            )
