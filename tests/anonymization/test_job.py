"""The batch job on the attribution world: every file has one report row, every readable one a PNG; a rerun
does nothing; a model without a real class is refused for the default target."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scan_world import CHAMPION, REFERENCE, World

from causalprint.anonymization.job import run_anonymize
from causalprint.anonymization.job_config import AnonymizeJobConfig
from causalprint.data.parts import read_parts
from causalprint.scan.errors import ScanError
from causalprint.tracking.mlflow_setup import MlflowConfig


def _job(world: World, target: str = "away") -> AnonymizeJobConfig:
    return AnonymizeJobConfig(
        storage=world.storage.config,
        ray={"object_store_mb": 256},
        mlflow=MlflowConfig(tracking_uri=world.tracking_uri),
        anonymize={
            "source": "inbox",
            "output": "anonymized/inbox",
            "model": CHAMPION,
            "reference": REFERENCE,
            "target": target,
            "method": {"steps": 10},
            "batch_size": 4,
            "actors": {"min_actors": 1, "max_actors": 1, "num_cpus": 0.5},
        },
    )


def test_every_image_is_anonymized_once_and_a_rerun_resumes(attribution_world: World) -> None:
    storage = attribution_world.storage
    summary = run_anonymize(_job(attribution_world))
    listed = len(attribution_world.good) + len(attribution_world.bad)
    assert summary["images"] == summary["written"] == listed and summary["errors"] == len(attribution_world.bad)
    rows = {r["uri"]: r for r in read_parts(storage, summary["output"] + "/report").to_pylist()}
    assert sorted(rows) == sorted([*attribution_world.good, *attribution_world.bad])
    for uri in attribution_world.good:
        row = rows[uri]
        png = Image.open(io.BytesIO(storage.read_bytes(row["output"])))
        original = Image.open(io.BytesIO(storage.read_bytes(uri)))
        assert png.format == "PNG" and png.size == original.size
        change = np.abs(np.asarray(png, int) - np.asarray(original.convert("RGB"), int)).max()
        assert change == row["max_change"] <= 4
        assert row["after"] and (row["succeeded"] == (row["after"] != row["removed"]) or not row["removed"])
    for uri, kind in attribution_world.bad.items():
        assert not rows[uri]["ok"] and rows[uri]["error_kind"] == kind and not rows[uri]["output"]
    assert summary["removed"] <= summary["named_before"] and 36 < summary["mean_psnr"]
    again = run_anonymize(_job(attribution_world))
    assert again["written"] == 0 and again["skipped"] == listed and again["images"] == listed


def test_the_default_target_needs_a_real_class(attribution_world: World) -> None:
    with pytest.raises(ScanError, match="has no 'real' class: use --target away"):
        run_anonymize(_job(attribution_world, target="real"))


def test_the_command_resumes_the_report(attribution_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from causalprint.cli import main

    run_anonymize(_job(attribution_world))  # done already, or done now
    code = main(
        [
            "anonymize",
            "inbox",
            "--out",
            "anonymized/inbox",
            "--preset",
            "tiny",
            "--target",
            "away",
            "--model",
            CHAMPION,
            "--set",
            f"storage.root={attribution_world.storage.root}",
            "--set",
            f"mlflow.tracking_uri={attribution_world.tracking_uri}",
            "--set",
            "anonymize.method.steps=10",
        ]
    )
    out = capsys.readouterr().out
    listed = len(attribution_world.good) + len(attribution_world.bad)
    assert code == 0 and f"{listed} images, {len(attribution_world.bad)} unreadable" in out
    assert f"0 written, {listed} already done" in out
