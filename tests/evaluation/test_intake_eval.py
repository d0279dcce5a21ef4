"""Scoring a scan report against a zoo manifest: named right, turned away, another source, architecture right,
unreadable rows and images the report lacks."""

from __future__ import annotations

import pyarrow as pa
import pytest

from causalprint.evaluation.intake_eval import score_report


def test_a_report_is_scored_per_source_against_the_manifest() -> None:
    manifest = pa.table(
        {
            "uri": ["a1", "a2", "a3", "b1", "b2", "c1"],
            "source": ["dcgan", "dcgan", "dcgan", "real", "real", "vae"],
            "arch": ["dcgan", "dcgan", "dcgan", "real", "real", "vae"],
        }
    )
    report = pa.table(
        {
            "uri": ["a1", "a2", "a3", "b1", "b2", "zz"],
            "predicted": ["dcgan", "gan (exact model unknown)", "stylegan", "real", None, "dcgan"],
            "architecture": ["dcgan", "dcgan", "stylegan", "real", None, "dcgan"],
            "unknown": [False, True, False, False, False, False],
            "ok": [True, True, True, True, False, True],
        }
    )
    scored = score_report(report, manifest)
    by = {r["source"]: r for r in scored["decisions"]}
    assert by["dcgan"]["correct"] == pytest.approx(1 / 3) and by["dcgan"]["unknown"] == pytest.approx(1 / 3)
    assert by["dcgan"]["other"] == pytest.approx(1 / 3) and by["dcgan"]["support"] == 3
    assert by["real"]["correct"] == 1.0 and by["real"]["support"] == 1  # its unreadable row is an error
    assert by["all"]["support"] == 4 and by["all"]["correct"] == pytest.approx(0.5)
    assert scored["architecture"]["dcgan"] == pytest.approx(2 / 3) and scored["architecture"]["all"] == 0.75
    assert scored["errors"] == 1 and scored["missing"] == 1  # c1 was never scanned; zz is not the zoo's
