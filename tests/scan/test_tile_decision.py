"""The tiles' aggregation rule on per-tile outputs known by hand: the image's class scores are the mean of its
tiles', the usual open-set decision follows on that mean, and the spread counts the tiles that agree."""

from __future__ import annotations

import numpy as np
import pytest

from causalprint.attribution.model import Codes
from causalprint.attribution.openset import OpenSetAttributor, Prototypes
from causalprint.scan.tile_decision import decide_tiles, image_codes, per_image

T = 0.1


def _prototypes_decider() -> OpenSetAttributor:
    prototypes = Prototypes().fit(np.eye(3), ["a", "b", "c"])
    decider = OpenSetAttributor(
        source="prototypes", prototypes=prototypes, families={"a": "gan", "b": "gan", "c": "diffusion"}, threshold=0.6
    )
    decider.scaler_.temperature_ = T
    return decider


def _codes(fp: list[list[float]], logits: np.ndarray | None = None) -> Codes:
    fp_array = np.asarray(fp, dtype=np.float64)
    n = len(fp_array)
    return Codes(
        fp=fp_array, content=np.zeros((n, 2)), logits=np.zeros((n, 3)) if logits is None else np.asarray(logits)
    )


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_the_mean_of_tile_scores_decides_and_the_spread_is_kept() -> None:
    decider = _prototypes_decider()
    # Image 0: three tiles lean to a, one is b. Image 1: one tile, c. Image 2: a b tile and a c tile.
    tiles = [[1, 0, 0], [1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
    counts = np.array([4, 1, 2])
    found = decide_tiles(decider, _codes(tiles), counts)

    # 1. each tile's scores (cosine similarities to the unit prototypes: the codes themselves); 2. their mean.
    mean = np.array([[0.7, 0.4, 0.0], [0.0, 0.0, 1.0], [0.0, 0.5, 0.5]])
    np.testing.assert_allclose(found.probabilities, _softmax(mean / T))
    # The same as the renormalised geometric mean of the tiles' calibrated probabilities (mean log-probability).
    tile_probs = _softmax(np.asarray(tiles) / T)
    geometric = np.exp(per_image(np.log(tile_probs), counts))
    np.testing.assert_allclose(found.probabilities, geometric / geometric.sum(1, keepdims=True))

    # 3. the open-set decision on the mean: a (0.7 >= 0.6), c, and image 2 unknown: its tiles pass on their own
    # (b and c, at 1.0) but their mean reaches 0.5, and its family evidence is split (gan 0.5, diffusion 0.5).
    assert [d.label for d in found.decisions] == ["a", "c", "unknown"]
    assert [d.known for d in found.decisions] == [True, True, False]
    assert found.decisions[0].score == pytest.approx(0.7)
    assert found.tiles.tolist() == [4, 1, 2] and found.agreeing.tolist() == [3, 1, 0]
    top = tile_probs.max(1)
    np.testing.assert_allclose(found.top_min, [top[:4].min(), top[4], top[5:].min()], rtol=1e-6)
    np.testing.assert_allclose(found.top_max, [top[:4].max(), top[4], top[5:].max()], rtol=1e-6)


def test_one_tile_per_image_is_todays_decision() -> None:
    decider = _prototypes_decider()
    rng = np.random.default_rng(0)
    codes = _codes(rng.normal(size=(6, 3)).tolist())
    found = decide_tiles(decider, codes, np.ones(6, dtype=np.int64))
    assert found.decisions == decider.predict(codes=codes.fp)
    np.testing.assert_array_equal(found.probabilities, decider.probabilities(codes=codes.fp))
    assert found.agreeing.tolist() == [1] * 6


def test_the_logits_path_means_the_logits() -> None:
    decider = OpenSetAttributor(["a", "b", "c"], source="logits", threshold=0.5)
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 5.0]])
    found = decide_tiles(decider, _codes([[1, 0, 0]] * 3, logits), np.array([2, 1]))
    np.testing.assert_allclose(found.probabilities, _softmax(np.array([[2.0, 1.0, 0.0], [1.0, 1.0, 5.0]])))
    assert [d.label for d in found.decisions] == ["a", "c"] and found.agreeing.tolist() == [1, 1]
    # The architecture reads the same mean: the image's logits are its tiles' mean.
    np.testing.assert_allclose(found.codes.logits, [[2.0, 1.0, 0.0], [1.0, 1.0, 5.0]])


def test_an_images_code_is_the_mean_of_its_tiles_unit_codes_and_bad_counts_are_refused() -> None:
    codes = image_codes(_codes([[3, 0, 0], [0, 4, 0], [0, 0, 2]]), np.array([2, 1]))
    np.testing.assert_allclose(codes.fp, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    for counts in ([2, 2], [3, 0], [[3]]):
        with pytest.raises(ValueError, match="do not split 3 rows"):
            per_image(np.zeros((3, 2)), np.array(counts))
