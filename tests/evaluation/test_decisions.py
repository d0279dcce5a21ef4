"""What users read on known sources: the share of each source's images that the open-set decision names, the share
turned away as unknown, and the operating point beside the closed-set recall."""

from __future__ import annotations

import pytest

from causalprint.attribution.generated import GENERATED_UNKNOWN
from causalprint.attribution.openset import UNKNOWN, Attribution
from causalprint.evaluation.evaluate_job import format_decisions
from causalprint.evaluation.metrics import decision_shares


def _d(label: str, known: bool) -> Attribution:
    return Attribution(label, 0.9, known, None, 0.5)


def test_shares_per_source_and_overall() -> None:
    sources = ["real", "real", "real", "real", "gan", "gan"]
    decisions = [
        _d("real", True),
        _d("real", True),
        _d(UNKNOWN, False),
        _d(GENERATED_UNKNOWN, False),  # turned away, not another source
        _d("gan", True),
        _d("real", True),  # another known source
    ]
    rows = {r["source"]: r for r in decision_shares(sources, decisions)}
    assert list(rows) == ["real", "gan", "all"]
    assert rows["real"]["correct"] == 0.5 and rows["real"]["unknown"] == 0.5 and rows["real"]["other"] == 0.0
    assert rows["gan"]["correct"] == 0.5 and rows["gan"]["other"] == 0.5 and rows["gan"]["support"] == 2
    assert rows["all"]["correct"] == pytest.approx(3 / 6) and rows["all"]["unknown"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="2 sources but 1 decisions"):
        decision_shares(["a", "b"], [_d("a", True)])

    details = {
        "per_source": [{"source": "real", "recall": 1.0}, {"source": "gan", "recall": 0.5}],
        "decisions": list(rows.values()),
        "operating_point": {"path": "prototypes", "threshold": 0.8, "target_tpr": 0.95, "family_threshold": 0.9},
    }
    text = format_decisions(details)
    assert "unknown threshold 0.8000" in text and "| real | 100.0 | 50.0 | 50.0 | 0.0 | 4 |" in text
    assert "| **all** |" in text
