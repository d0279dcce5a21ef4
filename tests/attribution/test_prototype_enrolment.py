"""Enrolment arithmetic: a new source becomes one more prototype of a copy of the attributor (the original is
untouched), names are checked, and the leave-one-out check says how its unseen images would be answered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalprint.attribution import CausalDecoupler, DecouplerConfig
from causalprint.attribution.calibration import Calibration
from causalprint.attribution.openset import Prototypes
from causalprint.attribution.prototype_enrolment import enrol_source, enrolled_sources
from causalprint.enrolment.errors import EnrolmentError
from causalprint.tracking.artifacts import LoadedAttributor

CLASSES = ["ddpm", "real", "stylegan"]
FAMILIES = {"ddpm": "diffusion", "real": "real", "stylegan": "gan"}
F = 3  # fingerprint code size: one axis per trained class below


def _cluster(axis: np.ndarray, n: int, seed: int, spread: float = 0.05) -> np.ndarray:
    return axis + spread * np.random.default_rng(seed).normal(size=(n, F))


def _attributor(threshold: float = 0.5) -> LoadedAttributor:
    torch.manual_seed(0)
    model = CausalDecoupler(
        DecouplerConfig(input_dim=4, num_classes=3, class_names=CLASSES, fp_dim=F, hidden=8, content_dim=2)
    )
    codes = np.concatenate([_cluster(np.eye(F)[k], 20, k) for k in range(3)])
    prototypes = Prototypes().fit(codes, np.repeat(CLASSES, 20))
    calibration = Calibration(
        class_names=CLASSES,
        families=FAMILIES,
        temperature=1.0,
        threshold=0.5,
        proto_temperature=0.1,
        proto_threshold=threshold,
        prototypes=prototypes,
        target_tpr=0.95,
        family_threshold=0.9,
    )
    return LoadedAttributor(
        model=model,
        calibration=calibration,
        requirements={"reference_id": "ref", "columns": ["one_step.dct"]},
        metrics={"test_accuracy": 0.99},
    )


def test_a_new_source_is_a_new_prototype_of_a_copy() -> None:
    parent = _attributor()
    new_axis = np.array([1.0, 1.0, -1.0]) / np.sqrt(3)
    enrolled, check = enrol_source(parent, "my-gan", "gan", _cluster(new_axis, 8, 7))

    assert enrolled.calibration.prototypes.labels_ == [*CLASSES, "my-gan"]
    assert enrolled.calibration.families["my-gan"] == "gan"
    assert enrolled_sources(enrolled) == ["my-gan"] and enrolled_sources(parent) == []
    assert enrolled.model is parent.model and enrolled.calibration.class_names == CLASSES
    assert enrolled.metrics == {}  # nothing has evaluated the enrolled version
    # The parent keeps its prototypes, families and metrics.
    assert parent.calibration.prototypes.labels_ == CLASSES and "my-gan" not in parent.calibration.families
    assert parent.metrics == {"test_accuracy": 0.99}

    # An unseen image of the new source is attributed to it on the prototype path; trained classes keep theirs.
    decider = enrolled.calibration.attributor("prototypes")
    decisions = decider.predict(codes=np.stack([new_axis, np.eye(F)[0]]))
    assert [d.label for d in decisions] == ["my-gan", "ddpm"] and decisions[0].family == "gan"
    assert check.samples == check.total_samples == 8
    assert check.loo_top1 == check.loo_accepted == 1.0
    assert check.nearest_class in CLASSES and check.nearest_similarity == pytest.approx(1 / np.sqrt(3), abs=0.05)


def test_a_source_indistinguishable_from_a_class_shows_in_the_check() -> None:
    _, check = enrol_source(_attributor(), "ddpm-copy", "diffusion", _cluster(np.eye(F)[0], 10, 3))
    assert check.nearest_class == "ddpm" and check.nearest_similarity > 0.99
    assert check.loo_top1 < 0.9  # its own samples are as near the trained ddpm prototype as to their own


def test_leave_one_out_rebuilds_each_sample_own_prototype_without_it() -> None:
    rng = np.random.default_rng(0)
    prototypes = Prototypes().fit(rng.normal(size=(30, F)), np.repeat(["a", "b", "c"], 10))
    new = rng.normal(size=(4, F))
    prototypes.enrol("d", new)
    sims = prototypes.held_out_similarity("d", new)
    for i in range(4):
        rest = np.delete(new, i, axis=0)
        rest = rest / np.linalg.norm(rest, axis=1, keepdims=True)
        centre = rest.mean(0) / np.linalg.norm(rest.mean(0))
        x = new[i] / np.linalg.norm(new[i])
        assert sims[i, 3] == pytest.approx(x @ centre)
        np.testing.assert_allclose(sims[i, :3], x @ prototypes.centers_[:3].T)
    with pytest.raises(ValueError, match="leave-one-out needs two"):
        Prototypes().fit(new[:1], ["one"]).held_out_similarity("one", new[:1])


def test_more_samples_of_an_enrolled_source_add_to_it() -> None:
    axis = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    once, _ = enrol_source(_attributor(), "mine", "vae", _cluster(axis, 3, 1))
    twice, check = enrol_source(once, "mine", "vae", _cluster(axis, 5, 2))
    assert twice.calibration.prototypes.labels_.count("mine") == 1
    assert check.samples == 5 and check.total_samples == 8
    assert once.calibration.prototypes.counts_[-1] == 3  # the first copy is not changed by the second


@pytest.mark.parametrize(
    ("source", "family", "message"),
    [
        ("real", "real", "'real' is a trained class"),
        ("stylegan", "gan", "'stylegan' is a trained class"),
        ("unknown", "gan", "source name 'unknown' is not allowed"),
        ("My GAN", "gan", "source name 'My GAN' is not allowed"),
        ("", "gan", "source name '' is not allowed"),
        ("mine", "GAN!", "family name 'GAN!' is not allowed"),
    ],
)
def test_names_that_would_confuse_the_answers_are_refused(source: str, family: str, message: str) -> None:
    parent = _attributor()
    with pytest.raises(EnrolmentError, match=message):
        enrol_source(parent, source, family, np.ones((3, F)))
    assert parent.calibration.prototypes.labels_ == CLASSES


def test_bad_codes_and_a_changed_family_are_refused() -> None:
    parent = _attributor()
    with pytest.raises(EnrolmentError, match="at least one image"):
        enrol_source(parent, "mine", "gan", np.zeros((0, F)))
    with pytest.raises(EnrolmentError, match="codes have 5 dims, the prototypes 3"):
        enrol_source(parent, "mine", "gan", np.ones((2, 5)))
    with pytest.raises(EnrolmentError, match="non-finite"):
        enrol_source(parent, "mine", "gan", np.full((2, F), np.nan))
    once, _ = enrol_source(parent, "mine", "gan", np.ones((2, F)))
    with pytest.raises(EnrolmentError, match="already enrolled with family 'gan', not 'vae'"):
        enrol_source(once, "mine", "vae", np.ones((2, F)))


def test_a_wider_source_gets_its_own_threshold_and_keeps_it_through_a_folder(tmp_path) -> None:
    parent = _attributor(threshold=0.99)  # the trained classes are tight: the shared threshold is strict
    axis = np.array([1.0, 1.0, -1.0]) / np.sqrt(3)
    samples = _cluster(axis, 40, 11, spread=0.3)
    unseen = _cluster(axis, 200, 12, spread=0.3)
    shared = parent.calibration.attributor("prototypes")
    enrolled, check = enrol_source(parent, "wide", "gan", samples)

    assert check.threshold is not None and check.threshold < 0.99
    assert enrolled.calibration.proto_class_thresholds == {"wide": check.threshold}
    assert parent.calibration.proto_class_thresholds == {}
    # Its threshold passes 95 % of the samples' leave-one-out scores by construction, so few nearest ones fail it.
    assert check.loo_top1 - 0.05 <= check.loo_accepted <= check.loo_top1
    # With the shared threshold most unseen images of the source would be "unknown"; with its own, most are it.
    shared_known = [d.known for d in shared.predict(codes=unseen)]
    answers = [d.label for d in enrolled.calibration.attributor("prototypes").predict(codes=unseen)]
    assert np.mean(shared_known) < 0.5 < answers.count("wide") / len(answers)
    # Trained classes keep the shared threshold: a code of "real" scoring between the two thresholds stays unknown.
    between = np.array([np.sqrt(0.03), np.sqrt(0.97), 0.0])  # cosine 0.985 to real's axis
    sims = enrolled.calibration.prototypes.similarity(between[None])[0]
    assert check.threshold < sims.max() < 0.99 and int(sims.argmax()) == CLASSES.index("real")
    assert not enrolled.calibration.attributor("prototypes").predict(codes=between[None])[0].known

    enrolled.save(tmp_path / "attributor")
    again = LoadedAttributor.from_folder(tmp_path / "attributor")
    assert again.calibration.proto_class_thresholds == {"wide": pytest.approx(check.threshold)}
    assert again.calibration.prototypes.labels_ == [*CLASSES, "wide"] and again.metrics == {}
    # More samples of it never make its threshold stricter.
    _, more = enrol_source(enrolled, "wide", "gan", _cluster(axis, 10, 13, spread=0.01))
    assert more.threshold <= check.threshold


def test_its_own_threshold_needs_enough_images_nearest_to_it() -> None:
    parent = _attributor(threshold=0.99)
    axis = np.array([1.0, 1.0, -1.0]) / np.sqrt(3)
    _, few = enrol_source(parent, "few", "gan", _cluster(axis, 9, 1, spread=0.3))
    assert few.threshold is None  # 9 images: the shared threshold stays
    # Images nearer a trained class do not loosen it: 12 images, 3 of them ddpm's, fit on the 9 others alone.
    mixed = np.concatenate([_cluster(axis, 9, 1, spread=0.1), _cluster(np.eye(F)[0], 3, 2)])
    enrolled, check = enrol_source(parent, "mixed", "gan", mixed)
    assert check.threshold is None and check.loo_top1 == pytest.approx(9 / 12)
    assert enrolled.calibration.proto_class_thresholds == {}


def test_its_own_threshold_is_fitted_on_the_images_nearest_to_it_alone() -> None:
    from causalprint.attribution.openset import choose_unknown_threshold

    parent = _attributor(threshold=0.99)
    axis = np.array([1.0, 1.0, -1.0]) / np.sqrt(3)
    mixed = np.concatenate([_cluster(axis, 14, 4, spread=0.2), _cluster(np.eye(F)[0], 3, 5)])
    enrolled, check = enrol_source(parent, "mixed", "gan", mixed)
    prototypes = enrolled.calibration.prototypes
    sims = prototypes.held_out_similarity("mixed", mixed)
    nearest = sims.argmax(1) == prototypes.labels_.index("mixed")
    assert nearest.sum() >= 10 and not nearest[-3:].any()  # the three ddpm-like images are nearer ddpm
    own = choose_unknown_threshold(sims[nearest, -1], parent.calibration.target_tpr)
    assert check.threshold == pytest.approx(own) and own > sims[~nearest, -1].min()
