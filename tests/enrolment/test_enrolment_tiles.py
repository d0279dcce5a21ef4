"""Enrolment reads an image larger than the model's size as native-resolution tiles by default (one code per
image: the mean of its tiles' unit codes) and resized when ``intake.mode`` is resize. Stopped before anything
is registered: the shared world's registry is left as it was."""

from __future__ import annotations

import numpy as np
import pytest
from scan_world import CHAMPION, REFERENCE, SIZE, World, write_mosaics

from causalprint.enrolment import register
from causalprint.enrolment.config import EnrolJobConfig
from causalprint.imaging.intake import IntakeConfig, decode_image
from causalprint.tracking.mlflow_setup import MlflowConfig

pytestmark = pytest.mark.slow


REAL_CODES = register._codes  # taken once: each call below patches it again


class Stop(Exception):
    """Raised where the codes are made: what was read is kept, nothing is registered."""


def _enrol_codes(world: World, monkeypatch: pytest.MonkeyPatch, intake: dict | None) -> tuple[str, np.ndarray]:
    """The intake mode and codes that ``enrol_images`` reads the mosaics with."""
    seen: dict = {}

    def codes(*args, **kwargs):
        seen["intake"] = args[4]
        seen["codes"], errors = REAL_CODES(*args, **kwargs)
        assert not errors
        raise Stop

    monkeypatch.setattr(register, "_codes", codes)
    enrol = {"source": "mosaic-gan", "family": "gan", "images": "enrol-mosaics", "model": CHAMPION}
    job = EnrolJobConfig.model_validate(
        {
            "storage": world.storage.config.model_dump(),
            "mlflow": MlflowConfig(tracking_uri=world.tracking_uri).model_dump(),
            "enrol": {**enrol, "reference": REFERENCE},
            **({"intake": intake} if intake else {}),
        }
    )
    with pytest.raises(Stop):
        register.enrol_images(job)
    return seen["intake"].mode, seen["codes"]


def test_enrolment_reads_tiles_by_default_and_resizes_when_set(
    attribution_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = attribution_world
    mosaics = write_mosaics(world.storage, "enrol-mosaics", 1, seed=11)
    pipeline = register.ImageAttributor(world.storage, CHAMPION, REFERENCE, tracking_uri=world.tracking_uri)
    uris = sorted(mosaics)  # the listing's order

    mode, codes = _enrol_codes(world, monkeypatch, None)
    assert mode == "tiles" and codes.shape[0] == len(uris)
    for code, uri in zip(codes, uris):
        tiles = pipeline.codes({"ok": np.ones(4, bool), "image": mosaics[uri]}).fp
        unit = tiles / np.linalg.norm(tiles, axis=1, keepdims=True)
        np.testing.assert_allclose(code, unit.mean(0), atol=1e-4)

    mode, codes = _enrol_codes(world, monkeypatch, {"mode": "resize"})
    assert mode == "resize" and codes.shape[0] == len(uris)
    images = np.stack([decode_image(world.storage.read_bytes(u), u, IntakeConfig(size=SIZE)) for u in uris])
    whole = pipeline.codes({"ok": np.ones(len(uris), bool), "image": images}).fp
    np.testing.assert_allclose(codes, whole / np.linalg.norm(whole, axis=1, keepdims=True), atol=1e-4)
