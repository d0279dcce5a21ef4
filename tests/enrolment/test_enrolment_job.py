"""`causalprint enrol`: a source the attributor never saw joins it from a few images as a new registered version
(weights unchanged, parent and champion untouched), its images are then attributed to it by the scan's own
attribution path, unreadable files are reported and skipped, and every refusal registers nothing.

The world is the scan tests' one, with an attributor trained without the "noisy" source.
"""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from scan_world import REFERENCE, SIZE, World, build_world, extract, register_model

from causalprint.attribution.dataset import DataConfig
from causalprint.attribution.training.config import TrainJobConfig
from causalprint.cli import main
from causalprint.data.collection import decode_rows
from causalprint.imaging.intake import IntakeConfig
from causalprint.scan.image_attributor import ImageAttributor
from causalprint.tracking.gate import promote_if_better
from causalprint.tracking.versions import load_attributor

pytestmark = pytest.mark.slow

BASE = "enrol-base"  # trained on smooth and blocky; noisy is held out of training entirely


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, ray_session: None, tiny_reference_dir: Path) -> World:
    # More images than the scan tests need: the calibration of a two-class model on a handful of validation rows
    # varies with the order Ray writes the rows in, and this test reads open-set decisions.
    world = build_world(tmp_path_factory, tiny_reference_dir, train=48, heldout=10)
    # The image control as the residual: deterministic, and the synthetic sources differ in their own spectra,
    # so a code space trained on two of them places the third apart (what enrolment relies on).
    extract(world.storage, "features/enrol", "image")
    train = TrainJobConfig(
        storage=world.storage.config,
        data=DataConfig(features="features/enrol", columns=["image.dct", "image.fourier"], held_out_sources=["noisy"]),
    )
    register_model(world.storage, world.tracking_uri, train, BASE)
    return world


def _enrol(world: World, images: str, *extra: str) -> int:
    return main(
        [
            "enrol",
            images,
            "--model",
            f"models:/{BASE}@champion",
            "--set",
            f"storage.root={world.storage.root}",
            "--set",
            f"mlflow.tracking_uri={world.tracking_uri}",
            *extra,
        ]
    )


def _versions(world: World) -> list[str]:
    client = mlflow.MlflowClient(world.tracking_uri)
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{BASE}'"))


def _heldout(world: World) -> tuple[np.ndarray, list[str]]:
    """The held-out images of every source (never used for enrolment) and their sources."""
    batch = decode_rows({"uri": np.array(world.good, dtype=object)}, world.storage, IntakeConfig(size=SIZE))
    assert batch["ok"].all()
    return batch["image"], [Path(u).name.split("-")[0] for u in world.good]


def _answers(world: World, model: str, images: np.ndarray) -> list[str]:
    pipeline = ImageAttributor(world.storage, model, REFERENCE, tracking_uri=world.tracking_uri, device="cpu")
    return [row["predicted"] for row in pipeline.attribute_images(images)]


def test_an_enrolled_source_is_attributed_by_its_new_version(world: World, capsys: pytest.CaptureFixture) -> None:
    storage = world.storage
    folder = storage.uri("enrol", "noisy")
    for i in range(12):  # noisy train images, which no model has seen; plus one truncated file
        storage.write_bytes(
            f"{folder}/{i:03d}.png", storage.read_bytes(storage.uri("images", "noisy", "train", f"{i:03d}.png"))
        )
    png = storage.read_bytes(f"{folder}/000.png")
    storage.write_bytes(f"{folder}/cut.png", png[: len(png) // 2])
    storage.write_bytes(f"{folder}/notes.txt", b"where these came from")  # listed too, whatever its suffix
    images, sources = _heldout(world)
    before = _answers(world, f"models:/{BASE}/1", images)
    assert "noisy" not in before

    assert _enrol(world, folder, "--source", "noisy", "--family", "diffusion") == 0
    out = capsys.readouterr().out
    assert f"new version models:/{BASE}/2 (alias candidate)" in out
    assert "14 files under" in out and "12 read, 2 unreadable" in out and "cut.png: truncated" in out
    assert "notes.txt: not_an_image" in out

    client = mlflow.MlflowClient(world.tracking_uri)
    aliases = {k: str(v) for k, v in client.get_registered_model(BASE).aliases.items()}
    assert aliases == {"champion": "1", "candidate": "2"}  # the champion did not move
    version = client.get_model_version(BASE, "2")
    assert version.tags["enrolled_from"] == f"models:/{BASE}/1" and version.tags["enrolled_sources"] == '["noisy"]'
    assert version.tags["reference_id"] == client.get_model_version(BASE, "1").tags["reference_id"]
    run = client.get_run(version.run_id)
    assert run.data.metrics["enrol_samples"] == 12 and run.data.params["source"] == "noisy"

    parent, child = (load_attributor(f"models:/{BASE}/{v}", tracking_uri=world.tracking_uri) for v in "12")
    assert child.calibration.prototypes.labels_ == [*parent.calibration.prototypes.labels_, "noisy"]
    assert child.calibration.families["noisy"] == "diffusion"
    for key, value in parent.model.state_dict().items():  # no retraining
        assert torch.equal(value, child.model.state_dict()[key]), key

    after = _answers(world, f"models:/{BASE}/2", images)
    enrolled = [a for a, s in zip(after, sources) if s == "noisy"]
    # Of its 10 held-out images, none before: 7 to 10 over 19 recorded runs, as this world's model varies per run
    # (below); the bound says that enrolment works, the unit tests pin how well.
    assert enrolled.count("noisy") >= 5, after
    # The new prototype takes few of the trained sources' 20 images (none in 15 of 18 recorded runs, 2 or 4 in the
    # others: this world's validation rows are drawn by a hash of paths that differ per run, and its two-class
    # model with them; the evaluation measures that cost on the bench), and each other one attributed to a trained
    # class keeps its answer (a family fallback may not: the new class joins the probabilities it sums).
    others = [(b, a) for b, a, s in zip(before, after, sources) if s != "noisy"]
    assert sum(a == "noisy" for _, a in others) <= 5, others
    assert all(a == b for b, a in others if b in ("smooth", "blocky") and a != "noisy"), others
    assert sum(b in ("smooth", "blocky") for b, _ in others) >= 10, before  # the check above is not empty

    # No evaluation measured the enrolled version, so the gate refuses to make it champion.
    decision = promote_if_better(client, "2", model_name=BASE)
    assert not decision.promoted and "FAIL: test_accuracy is missing (minimum 0.5)" in decision.reasons
    assert str(client.get_registered_model(BASE).aliases["champion"]) == "1"


def test_refusals_register_nothing(world: World, capsys: pytest.CaptureFixture) -> None:
    storage = world.storage
    few = storage.uri("enrol", "few")
    for i in range(2):
        storage.write_bytes(
            f"{few}/{i}.png", storage.read_bytes(storage.uri("images", "blocky", "train", f"{i:03d}.png"))
        )
    storage.write_bytes(f"{few}/notes.png", b"not a PNG")
    before = _versions(world)
    cases = [
        ((few, "--source", "smooth", "--family", "gan"), "'smooth' is a trained class of this attributor"),
        (
            (few, "--source", "mine", "--family", "gan"),
            "2 of 3 images under .* could be read; enrolment needs at least 5 .*notes.png: not_an_image",
        ),
        (("/etc", "--source", "mine", "--family", "gan"), "outside"),
        ((storage.uri("enrol", "nothing"), "--source", "mine", "--family", "gan"), "no such folder or file"),
        ((few, "--source", "mine", "--family", "gan", "--alias", "champion"), "only the evaluation gate moves"),
        (
            (few, "--source", "mine", "--family", "gan", "--model", "runs:/0a1b2c3d/attributor"),
            "'runs:/0a1b2c3d/attributor' is not one: use models:/<name>@<alias>",
        ),
    ]
    for args, message in cases:
        assert _enrol(world, *args) == 2, args
        err = capsys.readouterr().err  # after MLflow's download progress, if any
        assert "causalprint: " in err and "Traceback" not in err and re.search(message, err), (args, err)
    assert _versions(world) == before
