"""The scan reads an image larger than the model's size as native-resolution tiles by default, and resized when
configured; on a world whose answer is known (2x2 mosaics of one source's images), the tiles' decision is what
the model says on the mosaic's own quarters, and the resize intake is measured beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scan_world import CHAMPION, REFERENCE, SIZE, World, write_mosaics

from causalprint.data.parts import read_parts
from causalprint.imaging.tiles import AttributionIntakeConfig
from causalprint.scan.errors import ScanError
from causalprint.scan.image_attributor import ImageAttributor
from causalprint.scan.job import run_scan
from causalprint.scan.report import format_summary
from causalprint.scan.rows import format_rows, report_rows
from causalprint.scan.tile_decision import decide_tiles

pytestmark = pytest.mark.slow

PER_SOURCE = 6
NATIVE = "smooth-native.png"  # one image of exactly the model's size beside the mosaics


@pytest.fixture(scope="module")
def mosaics(attribution_world: World) -> dict[str, np.ndarray]:
    storage = attribution_world.storage
    found = write_mosaics(storage, "mosaics", PER_SOURCE, seed=2024)
    storage.write_bytes(storage.uri("mosaics", NATIVE), storage.read_bytes(attribution_world.good[0]))
    return found


def _scan(world: World, output: str, intake: AttributionIntakeConfig | None) -> dict[str, dict]:
    job = world.job(output, source=world.storage.uri("mosaics"))
    summary = run_scan(job.model_copy(update={"intake": intake}))
    return {row["uri"]: row for row in read_parts(world.storage, summary["report"]).to_pylist()} | {"": summary}


def _source(uri: str) -> str:
    return Path(uri).name.split("-")[0]


def test_scan_reads_larger_images_as_tiles_by_default_and_resized_when_set(
    attribution_world: World, mosaics: dict[str, np.ndarray]
) -> None:
    world, storage = attribution_world, attribution_world.storage
    tiled = _scan(world, "scans/tiles", None)
    resized = _scan(world, "scans/resize", AttributionIntakeConfig(mode="resize"))  # size: the model's
    native = storage.uri("mosaics", NATIVE)
    for uri in mosaics:
        assert (tiled[uri]["intake"], tiled[uri]["tiles"]) == ("tiles", 4) and tiled[uri]["ok"]
        assert 0 <= tiled[uri]["tiles_agreeing"] <= 4 and tiled[uri]["tile_top_min"] <= tiled[uri]["tile_top_max"]
        assert (resized[uri]["intake"], resized[uri]["tiles"], resized[uri]["tiles_agreeing"]) == ("resize", 1, 1)
    # The model's own size is read as it is, in either mode: the same decision.
    assert tiled[native]["intake"] == resized[native]["intake"] == "native"
    assert tiled[native]["predicted"] == resized[native]["predicted"]
    # Equal up to float rounding: the two scans batch the image with different neighbours.
    assert np.allclose(tiled[native]["probabilities"], resized[native]["probabilities"], rtol=1e-6, atol=1e-9)
    summary = tiled[""]
    assert summary["intake"] == {"mode": "tiles", "tiles": 4}
    assert summary["by_intake"] == {"tiles": len(mosaics), "native": 1}
    assert "native resolution" in format_summary(summary) and "resized to" in format_summary(resized[""])
    shown = format_rows(report_rows(storage, summary["report"]))
    assert "tiles " in shown and "/4" in shown and "native" in shown

    # A report holds one intake: scanning into it with the other is refused before anything is read.
    with pytest.raises(ScanError, match="intake"):
        _scan(world, "scans/tiles", AttributionIntakeConfig(mode="resize"))


def test_tiles_decide_a_known_world_and_resize_is_measured(
    attribution_world: World, mosaics: dict[str, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    world = attribution_world
    tiled = _scan(world, "scans/known-tiles", None)
    resized = _scan(world, "scans/known-resize", AttributionIntakeConfig(mode="resize"))
    pipeline = ImageAttributor(world.storage, CHAMPION, REFERENCE, tracking_uri=world.tracking_uri)
    unanimous = 0
    for uri, quarters in mosaics.items():
        truth, row = _source(uri), tiled[uri]
        assert quarters.shape == (4, SIZE, SIZE, 3)
        # The tiles are the mosaic's quarters, copied: the scan decides as the rule does on them, in memory.
        together = decide_tiles(pipeline.decider, pipeline.codes({"ok": np.ones(4, bool), "image": quarters}), [4])
        assert row["predicted"] == together.decisions[0].label
        np.testing.assert_allclose(row["probabilities"], together.probabilities[0], atol=1e-3)
        # Each quarter decided on its own, as a 16 px image of the world: where all four name the true source,
        # the mosaic must too (the mean of scores keeps a shared argmax, and its score is above their lowest).
        alone = [r["predicted"] for r in pipeline.attribute_images(quarters)]
        assert row["tiles_agreeing"] == sum(label == row["predicted"] for label in alone)
        if all(label == truth for label in alone):
            unanimous += 1
            assert row["predicted"] == truth
    assert unanimous > 0  # the world is one the model knows: otherwise this test shows nothing

    accuracy = {
        name: np.mean([rows[uri]["predicted"] == _source(uri) for uri in mosaics])
        for name, rows in (("tiles", tiled), ("resize", resized))
    }
    assert accuracy["tiles"] >= unanimous / len(mosaics)
    with capsys.disabled():  # the measured figures, beside each other
        print(
            f"\n{len(mosaics)} mosaics of {2 * SIZE} px: tiles {accuracy['tiles']:.2f} correct "
            f"({unanimous} with four correct quarters), resize {accuracy['resize']:.2f}"
        )
