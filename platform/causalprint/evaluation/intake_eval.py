"""Whole images against the intake that reads them: the scan's decisions on a zoo's held-out images, read as
native tiles or resized, scored against the zoo's manifest.

Each intake mode is one ``causalprint scan`` of the zoo's images folder (its train split ignored), into a report
of its own; its rows are joined to the manifest by URI. What users read is scored, as in the evaluation's
decisions table (:func:`~causalprint.evaluation.metrics.decision_shares`): per source, the share named correctly,
turned away as unknown, or given another source; and per architecture, the share whose architecture is right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from causalprint.attribution.openset import Attribution
from causalprint.evaluation.metrics import decision_shares


def score_report(report: pa.Table, manifest: pa.Table) -> dict[str, Any]:
    """Join the report's rows (``uri``, ``predicted``, ``architecture``, ``unknown``, ``ok``) to the manifest's
    (``uri``, ``source``, ``arch``) and score them: ``decisions`` per source (and ``all``), ``architecture`` per
    source, ``errors`` (rows that could not be read) and ``missing`` (manifest images absent from the report)."""
    truth = dict(zip(manifest["uri"].to_pylist(), zip(manifest["source"].to_pylist(), manifest["arch"].to_pylist())))
    rows = [r for r in report.to_pylist() if r["uri"] in truth]
    seen = {r["uri"] for r in rows}
    ok = [r for r in rows if r["ok"]]
    sources = [truth[r["uri"]][0] for r in ok]
    decisions = [
        Attribution(str(r["predicted"]), 0.0, not bool(r["unknown"]), None, 0.0) for r in ok
    ]  # the decision as the report states it; confidence and score do not enter the shares
    shares = decision_shares(sources, decisions) if ok else []
    arch_right = np.array([r["architecture"] == truth[r["uri"]][1] for r in ok], dtype=bool)
    by_source: dict[str, float] = {}
    for name in dict.fromkeys(sources):
        mask = np.array([s == name for s in sources], dtype=bool)
        by_source[name] = float(arch_right[mask].mean())
    by_source["all"] = float(arch_right.mean()) if len(arch_right) else float("nan")
    return {
        "decisions": shares,
        "architecture": by_source,
        "errors": len(rows) - len(ok),
        "missing": len(set(truth) - seen),
    }
