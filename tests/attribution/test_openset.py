"""Prototypes and enrolment, temperature scaling, the unknown threshold and family fallback, and the metrics
against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalprint.attribution.openset import (
    OpenSetAttributor,
    Prototypes,
    TemperatureScaler,
    auroc,
    choose_unknown_threshold,
    expected_calibration_error,
    oscr,
)


def _clusters(rng: np.random.Generator, centers: np.ndarray, n: int, spread: float = 0.4):
    y = rng.integers(0, len(centers), n)
    return centers[y] + spread * rng.normal(size=(n, centers.shape[1])), y


def test_prototypes_are_renormalised_means_of_normalised_codes() -> None:
    codes = np.array([[2.0, 0.0], [0.0, 3.0], [0.0, -1.0], [0.0, -5.0]])
    proto = Prototypes().fit(codes, ["a", "a", "b", "b"])
    assert proto.labels_ == ["a", "b"] and proto.counts_.tolist() == [2, 2]
    np.testing.assert_allclose(proto.centers_, [[np.sqrt(0.5), np.sqrt(0.5)], [0.0, -1.0]])
    np.testing.assert_allclose(proto.similarity([[1.0, 0.0]]), [[np.sqrt(0.5), 0.0]])
    assert proto.predict([[0.1, -2.0], [1.0, 1.1]]) == ["b", "a"]


def test_enrolment_from_five_samples_without_refitting(tmp_path) -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 16))
    codes, y = _clusters(rng, centers[:4], 400)
    proto = Prototypes().fit(codes, y)
    before = proto.centers_.copy()
    new_codes, _ = _clusters(rng, centers[4:], 105)
    proto.enrol("new", new_codes[:5])
    assert proto.predict(new_codes[5:]).count("new") >= 95
    np.testing.assert_array_equal(proto.centers_[:4], before)  # the known prototypes are untouched
    held_out, y_held = _clusters(rng, centers[:4], 200)
    assert np.mean(np.array(proto.predict(held_out), dtype=object) == y_held) > 0.95
    # More samples of an enrolled class update its mean; the folder round-trips.
    proto.enrol("new", new_codes[5:10])
    assert proto.counts_[-1] == 10
    proto.save(tmp_path)
    loaded = Prototypes.load(tmp_path)
    assert loaded.labels_ == [0, 1, 2, 3, "new"]
    np.testing.assert_array_equal(loaded.centers_, proto.centers_)


def test_temperature_scaling_lowers_nll_of_overconfident_logits() -> None:
    rng = np.random.default_rng(1)
    true_logits = rng.normal(size=(2000, 5))
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    labels = (rng.random((len(p), 1)) > p.cumsum(1)).sum(1)  # one draw from each row's categorical
    overconfident = 4.0 * true_logits
    scaler = TemperatureScaler()
    nll_before = scaler.nll(overconfident, labels)
    scaler.fit(overconfident, labels)
    assert 3.2 < scaler.temperature_ < 4.8
    assert scaler.nll(overconfident, labels) < 0.8 * nll_before
    raw_probs = np.exp(overconfident) / np.exp(overconfident).sum(1, keepdims=True)
    assert expected_calibration_error(scaler.transform(overconfident), labels) < 0.5 * expected_calibration_error(
        raw_probs, labels
    )
    # Torch inputs work too.
    assert TemperatureScaler().fit(torch.from_numpy(overconfident), torch.from_numpy(labels)).temperature_ == (
        pytest.approx(scaler.temperature_, rel=1e-6)
    )


def test_choose_unknown_threshold_accepts_the_target_fraction() -> None:
    scores = np.arange(100) / 100.0
    t = choose_unknown_threshold(scores, target_tpr=0.95)
    assert t == pytest.approx(0.04)
    assert np.mean(scores >= t) >= 0.95 and np.mean(scores >= t + 0.01) < 0.96
    assert choose_unknown_threshold(scores, 1.0) == 0.0
    with pytest.raises(ValueError):
        choose_unknown_threshold(scores, 0.0)


def test_attributor_known_family_fallback_and_unknown() -> None:
    names = ["stylegan", "ddpm", "ldm"]
    families = {"stylegan": "gan", "ddpm": "diffusion", "ldm": "diffusion"}
    att = OpenSetAttributor(names, families=families, threshold=0.6, family_threshold=0.8)
    logits = np.log(
        np.array(
            [
                [0.9, 0.05, 0.05],  # confident: known
                [0.04, 0.48, 0.48],  # unsure between two diffusion models
                [0.34, 0.33, 0.33],
            ]
        )
    )  # unsure between families
    known, fam, unknown = att.predict(logits=logits)
    assert (known.label, known.known, known.family) == ("stylegan", True, "gan")
    assert known.confidence == pytest.approx(0.9)
    assert (fam.label, fam.known, fam.family) == ("diffusion (exact model unknown)", False, "diffusion")
    assert fam.confidence == pytest.approx(0.96)
    assert (unknown.label, unknown.known, unknown.family) == ("unknown", False, None)
    assert unknown.score == pytest.approx(0.34)


def test_real_is_never_a_family_fallback() -> None:
    """Unsure between two real-looking classes: the family "real" would pass, but real is no model family."""
    names = ["real", "real-phone", "stylegan"]
    families = {"real": "real", "real-phone": "real", "stylegan": "gan"}
    att = OpenSetAttributor(names, families=families, threshold=0.6, family_threshold=0.8)
    unsure_real, unsure_gan = att.predict(logits=np.log(np.array([[0.48, 0.48, 0.04], [0.02, 0.03, 0.95]])))
    assert (unsure_real.label, unsure_real.known, unsure_real.family) == ("unknown", False, None)
    assert unsure_gan.label == "stylegan"
    att = OpenSetAttributor(names, families={**families, "real-phone": "gan"}, threshold=0.6, family_threshold=0.5)
    [fallback] = att.predict(logits=np.log(np.array([[0.30, 0.35, 0.35]])))
    assert fallback.label == "gan (exact model unknown)"  # a model family still falls back


def test_attributor_on_prototypes_fits_threshold_and_sees_enrolled_classes() -> None:
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(6, 16))
    codes, y = _clusters(rng, centers[:4], 400)
    proto = Prototypes().fit(codes, y)
    att = OpenSetAttributor(source="prototypes", prototypes=proto)
    val, y_val = _clusters(rng, centers[:4], 400)
    att.fit(y_val, codes_val=val, target_tpr=0.95)
    assert att.scaler_.temperature_ < 1.0  # cosine similarities need sharpening to become probabilities
    test, y_test = _clusters(rng, centers[:4], 300)
    novel, _ = _clusters(rng, centers[4:5], 100)
    out = att.predict(codes=np.vstack([test, novel]))
    known_out, novel_out = out[:300], out[300:]
    assert np.mean([a.known for a in known_out]) > 0.9
    assert np.mean([a.label == str(t) for a, t in zip(known_out, y_test)]) > 0.9
    assert np.mean([a.label == "unknown" for a in novel_out]) > 0.9
    assert auroc(att.scores(codes=test), att.scores(codes=novel)) > 0.95
    proto.enrol("new", novel[:5])
    assert np.mean([a.label == "new" for a in att.predict(codes=novel[5:])]) > 0.9


def test_auroc_hand_case() -> None:
    # Known above unknown in 5 of the 6 pairs: (0.4, 0.7) is the one wrong order.
    assert auroc([0.9, 0.8, 0.4], [0.7, 0.3]) == pytest.approx(5 / 6)
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0


def test_oscr_hand_case() -> None:
    # Sweep: t=0.9 -> (FPR 0, CCR 1/3); 0.8 -> (0, 1/3); 0.7 -> (1/2, 1/3); 0.4 -> (1/2, 2/3); 0.3 -> (1, 2/3).
    # Area = 1/2 * 1/3 + 1/2 * 2/3 = 1/2.
    assert oscr([0.9, 0.8, 0.4], [True, False, True], [0.7, 0.3]) == pytest.approx(0.5)
    assert oscr([0.9, 0.8], [True, True], [0.1, 0.2]) == pytest.approx(1.0)
    # Perfect separation caps OSCR at the closed-set accuracy; total overlap with ties gives a diagonal.
    assert oscr([0.9, 0.8, 0.7, 0.6], [True, True, True, False], [0.1]) == pytest.approx(0.75)
    assert oscr([0.5, 0.5], [True, True], [0.5]) == pytest.approx(0.5)


def test_ece_hand_case() -> None:
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    labels = np.array([0, 1, 1, 0])
    # bins of width 0.2: (0.4, 0.6] holds 0.6 (wrong): 1/4 * 0.6; (0.6, 0.8] holds 0.7 and 0.8 (both right):
    # 1/2 * 0.25; (0.8, 1] holds 0.9 (right): 1/4 * 0.1.  Total 0.3.
    assert expected_calibration_error(probs, labels, bins=5) == pytest.approx(0.3)
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), [0, 1]) == 0.0
