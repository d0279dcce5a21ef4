"""The promotion gate: a registered version becomes ``champion`` only if it meets the thresholds and is no worse
than the champion."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from causalprint.config import StrictModel
from causalprint.tracking.versions import CHAMPION, MODEL_NAME, RegisteredVersion, mlflow_client

log = logging.getLogger(__name__)

__all__ = ["GateConfig", "promote_if_better", "PromotionDecision"]


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
