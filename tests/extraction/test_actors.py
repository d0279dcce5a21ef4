"""The feature actor computes only the vector columns it is asked for."""

from __future__ import annotations

import numpy as np

from causalprint.extraction.actors import FeatureActor
from causalprint.extraction.config import SpaceSpec
from causalprint.storage import Storage, StorageConfig


def _batch(n: int = 3, size: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "uri": np.array([f"{i}.png" for i in range(n)], dtype=object),
        "ok": np.array([True, False, True]),
        "image": np.zeros((n, size, size, 3), np.uint8),
        "residual.one_step": rng.normal(size=(n, 3, size, size)).astype(np.float32),
        "residual.latent": rng.normal(size=(n, 3, size, size)).astype(np.float32),
    }


def test_every_mode_by_every_space_without_a_filter(tmp_path) -> None:
    spaces = [SpaceSpec(name="rgb"), SpaceSpec(name="dct")]
    actor = FeatureActor(Storage(StorageConfig(root=str(tmp_path))), spaces, 16)
    out = actor(_batch())
    vectors = sorted(k for k in out if "." in k)
    assert vectors == ["latent.dct", "latent.rgb", "one_step.dct", "one_step.rgb"]
    assert "image" not in out and not any(k.startswith("residual.") for k in out)
    assert not out["one_step.rgb"][1].any() and out["one_step.rgb"][0].any()  # error rows stay zero


def test_only_the_requested_columns(tmp_path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    spaces = [SpaceSpec(name="rgb"), SpaceSpec(name="dct")]
    every = FeatureActor(storage, spaces, 16)(_batch())
    some = FeatureActor(storage, spaces, 16, columns=["one_step.dct", "latent.rgb"])(_batch())
    assert sorted(k for k in some if "." in k) == ["latent.rgb", "one_step.dct"]
    assert np.array_equal(some["one_step.dct"], every["one_step.dct"])
