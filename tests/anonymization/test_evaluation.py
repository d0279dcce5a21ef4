"""The anonymization evaluation (``causalprint evaluate-anonymization``) on the tests' attribution world: what it
decides on a world whose answer we know, and the small rules it is built from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scan_world import SOURCES, World

from causalprint.anonymization.evaluation import (
    AnonymizationEvalResult,
    NaivePoint,
    answer_kind,
    forge_target,
    interpolate_at,
)
from causalprint.jobs.catalog import JOBS
from causalprint.jobs.spec import find
from causalprint.tracking.mlflow_setup import MlflowConfig


def test_answers_are_counted_by_what_the_user_sees() -> None:
    names = ["real", "dcgan", "ddpm"]
    assert answer_kind("ddpm", "ddpm", names) == "true source"
    assert answer_kind("real", "ddpm", names) == "real"
    assert answer_kind("dcgan", "ddpm", names) == "another known source"
    assert answer_kind("diffusion (exact model unknown)", "ddpm", names) == "family, exact model unknown"
    assert answer_kind("unknown", "ddpm", names) == "unknown"


def test_forgery_targets_the_next_known_source_never_real() -> None:
    names = ["dcgan", "ddpm", "real", "vae"]
    assert [forge_target(s, names) for s in names] == ["ddpm", "vae", None, "dcgan"]
    assert forge_target("ddpm", ["real", "ddpm"]) is None


def test_naive_accuracy_is_read_at_ours_psnr_along_the_sweep() -> None:
    points = [
        NaivePoint("jpeg", f"q{q}", p, 1.0, a, None) for q, p, a in ((95, 45.0, 1.0), (50, 35.0, 0.6), (30, 30.0, 0.2))
    ]
    assert interpolate_at(40.0, points) == pytest.approx(0.8)
    assert interpolate_at(30.0, points) == pytest.approx(0.2)
    assert interpolate_at(50.0, points) is None  # never extrapolated


@pytest.mark.slow
def test_on_the_attribution_world(attribution_world: World, tmp_path: Path) -> None:
    """The tiny preset on the world: the copy is trained by the train job's code; ours removes the source better
    than a naive removal at the same PSNR; forgery moves images to the target; every row is in the report."""
    spec = find("evaluate-anonymization", JOBS)
    config = spec.build(
        "tiny",
        overrides=[
            f"storage.root={attribution_world.storage.config.root}",
            f"mlflow.tracking_uri={attribution_world.tracking_uri}",
            f"evaluate.figures={tmp_path}",
        ],
    )
    config = config.model_copy(
        update={
            "ray": config.ray.model_copy(update={"object_store_mb": 256}),
            "mlflow": MlflowConfig(tracking_uri=attribution_world.tracking_uri),
        }
    )
    result: AnonymizationEvalResult = spec.load().run(config)

    assert result.images == 3 * len(SOURCES) and result.class_names == sorted(SOURCES)
    roles = {a.role: a for a in result.attributors}
    ours = roles["white-box"]
    assert "independent copy" in roles
    assert "copy" in result.models["independent copy"] and result.models["independent copy"] != result.models["ours"]
    assert {a.name for a in result.attributors if a.role == "black-box baseline"} == {"frank2020"}
    assert "dire" in result.not_run and "DIRE" in result.not_run["dire"]
    assert all(abs(sum(a.answers.values()) - 1) < 1e-9 for a in result.attributors)
    # White-box removal within the 4-level bound, scored on the written files.
    assert result.max_change <= 4 and result.psnr > 36 and result.ssim > 0.95
    written = attribution_world.storage.list_files(
        attribution_world.storage.uri("evaluation/anonymization/tiny/images")
    )
    assert len(written) == result.images
    assert ours.clean >= 0.3 and ours.after < ours.clean and ours.after <= result.chance
    # Noise at ours' PSNR leaves ours more accurate than the anonymization does (JPEG's sweep lies far below it
    # on these flat 16-pixel images, so it has no point there).
    assert result.naive_at_ours["noise"] is not None and result.naive_at_ours["noise"] > ours.after
    assert result.naive_at_ours["jpeg"] is None
    # Forgery raises the chosen source's calibrated probability.
    forgery = result.forgery
    assert forgery["tried"] == len(SOURCES) and forgery["target_probability_raised"] >= 1 / 3
    assert forgery["target_probability"][1] > forgery["target_probability"][0]
    assert Path(result.figure).is_file()
    text = spec.load().describe(result)
    assert "| target of issue 25 |" in text and "independent copy" in text and np.isfinite(result.seconds_per_image)


def test_the_psnr_floor_holds_on_the_delivered_image(attribution_world: World) -> None:
    """The second budget: a 16-level bound with a 38 dB floor spends at most the floor's RMS (up to the rounding
    to uint8), and the probability loss still moves the named source's probability down."""
    from scan_world import CHAMPION, REFERENCE, SIZE

    from causalprint.anonymization.config import AnonymizeOptions
    from causalprint.anonymization.method import anonymize
    from causalprint.imaging.intake import IntakeConfig, decode_image
    from causalprint.scan.image_attributor import ImageAttributor

    storage = attribution_world.storage
    pipeline = ImageAttributor(storage, CHAMPION, REFERENCE, tracking_uri=attribution_world.tracking_uri, device="cpu")
    options = AnonymizeOptions(
        target="away", max_change=16, psnr_floor=38, loss="probability", steps=15, check_every=15
    )
    for uri in attribution_world.good[:3]:
        image = decode_image(storage.read_bytes(uri), uri, IntakeConfig(size=SIZE))
        result = anonymize(pipeline, image, options)
        assert result.max_change <= 16 and result.psnr >= 37.5
        if result.removed:
            assert result.after["probabilities"][result.removed] < result.before["probabilities"][result.removed]
