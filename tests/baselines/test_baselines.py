"""One contract test per baseline, looping over the registry, on synthetic columns where the classes differ.

Each class leaves its own trace in every column, as a generator would: a periodic pattern and a colour offset in
the image (hence in its DCT), an offset along a class direction in the 1280-d embedding, an amplitude and
smoothness of the autoencoder residual, and a sign-randomised pattern in the DIRE residual. Class ``UNKNOWN`` is
never trained on: it has its own pattern, direction and a much larger, blockier residual.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from causalprint.baselines import BASELINES, COLUMN_DOCS, Baseline, create_baseline, load_baseline
from causalprint.config import ConfigError
from causalprint.features.spaces.dct import dct_matrix
from causalprint.registry import UnknownPluginError

S = 16
K = 4  # trained classes 0..K-1
UNKNOWN = K  # one more class, only for the open-set test
N_TRAIN, N_TEST = 80, 40  # rows per class

# Small but real settings, so that each fit takes well under a second on one thread.
TINY: dict[str, dict[str, Any]] = {
    "yu2019": {"width": 8, "epochs": 4, "batch_size": 32, "lr": 5e-3},
    "dire": {"width": 8, "epochs": 4, "batch_size": 32, "lr": 5e-3},
    "frank2020": {"epochs": 20, "batch_size": 64},
    "univfd": {"epochs": 20, "batch_size": 64},
    "aeroblade": {},
}
NAMES = sorted(TINY)


def _patterns(side: int) -> np.ndarray:
    """``[K + 1, 3, S, S]`` periodic patterns in {-1, 1}: stripes, stripes, checkerboard, period-4 stripes, and
    diagonal period-4 stripes for the unknown class."""
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    maps = [
        (-1.0) ** i,
        (-1.0) ** j,
        (-1.0) ** (i + j),
        np.where((j // 2) % 2 == 0, 1.0, -1.0),
        np.where(((i + j) // 2) % 2 == 0, 1.0, -1.0),
    ]
    return np.stack([np.broadcast_to(m, (3, side, side)) for m in maps]).astype(np.float32)


def _blocky(rng: np.random.Generator, n: int, side: int, block: int) -> np.ndarray:
    """White noise ``[n, 3, S, S]`` at ``S / block`` resolution, nearest-upsampled (block x block constant)."""
    coarse = rng.standard_normal((n, 3, side // block, side // block))
    return np.repeat(np.repeat(coarse, block, axis=2), block, axis=3)


def synthetic(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Every baseline column for rows of class ``labels`` ``[N]`` (values in 0..UNKNOWN)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    patterns = _patterns(S)
    colours = np.array([[0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1], [0.1, 0.1, 0], [0, 0.1, 0.1]], np.float32)
    # Image: smooth random content + the class pattern + the class colour offset, in [-1, 1].
    content = 0.5 * _blocky(rng, n, S, 4) / 3
    image = np.clip(content + 0.15 * patterns[labels] + colours[labels][:, :, None, None], -1, 1)
    # DCT: log |D X D^T| per channel, as the dct feature space computes it.
    basis = dct_matrix(S).numpy()
    dct = np.log(np.abs(basis @ image @ basis.T) + 1e-5)
    # Embedding: N(0, I) + 6 * the class direction (random unit vectors, one per class).
    directions = np.random.default_rng(1234).standard_normal((K + 1, 1280))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    sl = rng.standard_normal((n, 1280)) + 6.0 * directions[labels]
    # Autoencoder residual: (amplitude, block size) per class; the unknown one is far larger and blockier.
    amp_block = [(0.02, 1), (0.02, 2), (0.08, 1), (0.08, 2), (0.4, 4)]
    latent = np.zeros((n, 3, S, S))
    for k, (amp, block) in enumerate(amp_block):
        rows = labels == k
        latent[rows] = amp * _blocky(rng, int(rows.sum()), S, block)
    # DIRE residual: the class pattern's support ({0, 1}) with a random sign per image (so only |r| is stable).
    signs = rng.choice([-1.0, 1.0], size=(n, 1, 1, 1))
    dire = 0.05 * signs * (1 + patterns[labels]) / 2 + 0.01 * rng.standard_normal((n, 3, S, S))
    flat = {"image.rgb": image, "image.dct": dct, "image.sl": sl, "latent.rgb": latent, "dire.rgb": dire}
    return {k: v.reshape(n, -1).astype(np.float32) for k, v in flat.items()}


def _labels(classes: range, per_class: int) -> np.ndarray:
    return np.repeat(np.array(list(classes), dtype=np.int64), per_class)


Y_TRAIN = _labels(range(K), N_TRAIN)
Y_TEST = _labels(range(K), N_TEST)
TRAIN = synthetic(Y_TRAIN, seed=0)
TEST = synthetic(Y_TEST, seed=1)


def _fit(name: str, seed: int = 0, **extra: Any) -> Baseline:
    return create_baseline(name, device="cpu", seed=seed, **{**TINY[name], **extra}).fit(TRAIN, Y_TRAIN, K)


@pytest.fixture(scope="module")
def fitted() -> dict[str, Baseline]:
    return {name: _fit(name) for name in NAMES}


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties count half."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


# ----- the registry -----


def test_registry_lists_the_five_baselines() -> None:
    assert BASELINES.names() == ["aeroblade", "dire", "frank2020", "univfd", "yu2019"]
    for name in BASELINES.names():
        cls = BASELINES.get(name)
        assert cls.name == name and cls.paper and cls.columns
        assert all(c in COLUMN_DOCS for c in cls.columns)


def test_unknown_option_and_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="epochz: unknown key"):
        create_baseline("yu2019", epochz=3)
    with pytest.raises(ConfigError, match="scales"):
        create_baseline("aeroblade", scales=(0, 2))
    with pytest.raises(UnknownPluginError, match="known: aeroblade, dire"):
        create_baseline("resnet")


# ----- the contract, per baseline -----


@pytest.mark.parametrize("name", NAMES)
def test_learns_easy_classes(fitted: dict[str, Baseline], name: str) -> None:
    model = fitted[name]
    probs = model.predict_proba(TEST)
    assert probs.shape == (len(Y_TEST), K) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    pred = model.predict(TEST)
    assert pred.shape == (len(Y_TEST),) and pred.dtype == np.int64
    np.testing.assert_array_equal(pred, probs.argmax(1))
    accuracy = float((pred == Y_TEST).mean())
    assert accuracy >= 0.9, f"{name}: held-out accuracy {accuracy:.3f}"
    assert model.known_score(TEST).shape == (len(Y_TEST),)


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_give_identical_probabilities(fitted: dict[str, Baseline], name: str, tmp_path: Path) -> None:
    model = fitted[name]
    model.save_pretrained(tmp_path / name)
    files = sorted(p.name for p in (tmp_path / name).iterdir())
    assert files == ["config.json", "model.safetensors"]
    expected = model.predict_proba(TEST)
    for loaded in (
        load_baseline(tmp_path / name, device="cpu"),
        type(model).from_pretrained(tmp_path / name, device="cpu"),
    ):
        assert type(loaded) is type(model) and loaded.options == model.options
        np.testing.assert_array_equal(loaded.predict_proba(TEST), expected)
        np.testing.assert_array_equal(loaded.known_score(TEST), model.known_score(TEST))


def test_from_pretrained_refuses_another_baselines_folder(fitted: dict[str, Baseline], tmp_path: Path) -> None:
    fitted["frank2020"].save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="holds a 'frank2020' baseline, not 'univfd'"):
        BASELINES.get("univfd").from_pretrained(tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result(fitted: dict[str, Baseline], name: str) -> None:
    torch.manual_seed(12345)  # the global random state must not matter
    again = _fit(name)
    np.testing.assert_array_equal(again.predict_proba(TEST), fitted[name].predict_proba(TEST))


def test_another_seed_changes_a_trained_baseline(fitted: dict[str, Baseline]) -> None:
    other = _fit("yu2019", seed=1)
    assert not np.array_equal(other.predict_proba(TEST), fitted["yu2019"].predict_proba(TEST))


@pytest.mark.parametrize("name", NAMES)
def test_missing_or_misshapen_columns_are_refused(fitted: dict[str, Baseline], name: str) -> None:
    model = fitted[name]
    (column,) = model.columns
    others = {k: v for k, v in TEST.items() if k != column}
    with pytest.raises(ValueError, match=f"needs column '{column}'"):
        model.predict_proba(others)
    with pytest.raises(ValueError, match=f"needs column '{column}'"):
        create_baseline(name).fit(others, Y_TRAIN, K)
    with pytest.raises(ValueError, match=f"column '{column}' has width 10"):
        model.predict({**TEST, column: TEST[column][:, :10]})
    with pytest.raises(ValueError, match=f"column '{column}' has width 10; {name} expects"):
        create_baseline(name).fit({column: TRAIN[column][:, :10]}, Y_TRAIN, K)


def test_labels_are_checked() -> None:
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        create_baseline("frank2020").fit(TRAIN, Y_TRAIN, 3)
    with pytest.raises(ValueError, match="y must be integer"):
        create_baseline("frank2020").fit(TRAIN, Y_TRAIN[:-1], K)


def test_unfitted_baseline_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        create_baseline("univfd").predict(TEST)


# ----- open set -----


@pytest.mark.parametrize("name", ["aeroblade", "univfd"])
def test_known_score_is_higher_for_trained_sources(fitted: dict[str, Baseline], name: str) -> None:
    unknown = synthetic(np.full(N_TEST, UNKNOWN), seed=2)
    model = fitted[name]
    known_scores, unknown_scores = model.known_score(TEST), model.known_score(unknown)
    assert auroc(known_scores, unknown_scores) >= 0.9


def test_aeroblade_known_score_is_minus_the_nearest_distance(fitted: dict[str, Baseline]) -> None:
    model = fitted["aeroblade"]
    distances = model.distances(TEST)
    assert distances.shape == (len(Y_TEST), K)
    np.testing.assert_allclose(model.known_score(TEST), -distances.min(1))
    np.testing.assert_array_equal(model.predict(TEST), distances.argmin(1))


def test_a_class_without_train_rows_is_never_predicted() -> None:
    rows = Y_TRAIN != 1
    model = create_baseline("aeroblade").fit({"latent.rgb": TRAIN["latent.rgb"][rows]}, Y_TRAIN[rows], K)
    probs = model.predict_proba(TEST)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs[:, 1] == 0).all() and (model.predict(TEST) != 1).all()


def test_cnn_training_logs_each_epoch(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="causalprint.baselines"):
        _fit("dire", epochs=2)
    epochs = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert len(epochs) == 2 and "rows/s" in epochs[0]
