"""The enrolment figures of the evaluation: held-out sources enrolled from k codes each, scored on test codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalprint.attribution import CausalDecoupler, DecouplerConfig
from causalprint.attribution.calibration import Calibration
from causalprint.attribution.openset import Prototypes
from causalprint.evaluation.few_shot import enrolment_draws, enrolment_rates, format_enrolment
from causalprint.tracking.artifacts import LoadedAttributor

F = 4
AXES = {"a": 0, "b": 1, "new": 2, "other": 3}  # a and b trained; new and other held out


def _codes(source: str, n: int, rng: np.random.Generator, spread: float = 0.1) -> np.ndarray:
    return np.eye(F)[AXES[source]] + spread * rng.normal(size=(n, F))


def _world(threshold: float = 0.9, spread: float = 0.1) -> tuple[LoadedAttributor, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = CausalDecoupler(
        DecouplerConfig(input_dim=2, num_classes=2, class_names=["a", "b"], fp_dim=F, hidden=4, content_dim=2)
    )
    prototypes = Prototypes().fit(np.concatenate([_codes("a", 30, rng), _codes("b", 30, rng)]), ["a"] * 30 + ["b"] * 30)
    calibration = Calibration(
        class_names=["a", "b"],
        families={"a": "gan", "b": "gan"},
        temperature=1.0,
        threshold=0.5,
        proto_temperature=0.1,
        proto_threshold=threshold,
        prototypes=prototypes,
        target_tpr=0.95,
        family_threshold=0.9,
    )
    attributor = LoadedAttributor(model=model, calibration=calibration, requirements={"columns": ["x.dct"]})
    sources = ["a", "b", "new", "other"]
    spreads = {"a": 0.1, "b": 0.1, "new": spread, "other": spread}
    data = {
        "train_codes": np.concatenate([_codes(s, 20, rng, spreads[s]) for s in sources]),
        "train_sources": np.repeat(sources, 20).astype(object),
        "test_codes": np.concatenate([_codes(s, 50, rng, spreads[s]) for s in sources]),
        "test_sources": np.repeat(sources, 50).astype(object),
    }
    return attributor, data


def test_enrolled_sources_are_found_and_cost_the_trained_ones_nothing_here() -> None:
    # The held-out sources spread wider than the trained ones, whose shared threshold is strict.
    attributor, data = _world(threshold=0.99, spread=0.3)
    rows = enrolment_rates(
        attributor, **data, held_out=["new", "other"], families={"new": "vae", "other": "gan"}, shots=[1, 20]
    )
    assert [r["shots"] for r in rows] == [1, 20]
    assert all(r["heldout_rows"] == 100 and r["known_rows"] == 100 for r in rows)
    # Well-separated sources: one image already finds its direction, but only with enough images does a source
    # get the threshold of its own that lets most of its wider codes through.
    assert rows[0]["heldout_top1"] > 0.75 and rows[1]["heldout_top1"] > 0.9
    assert rows[0]["heldout_attributed"] < 0.1 and rows[1]["heldout_attributed"] > 0.9
    assert rows[1]["known_attributed"] == pytest.approx(rows[1]["known_attributed_before"])
    assert attributor.calibration.prototypes.labels_ == ["a", "b"]  # scored on copies
    text = format_enrolment(["new", "other"], 0, rows)
    assert "each of new, other enrolled from k of its train images, drawn with seed 0 and nested across k" in text
    assert f"k=20: held-out sources nearest to their own prototype {100 * rows[1]['heldout_top1']:.1f} %" in text


def test_a_held_out_source_indistinguishable_from_a_trained_one_shows() -> None:
    attributor, data = _world()
    data["train_codes"][data["train_sources"] == "new"] = _codes("a", 20, np.random.default_rng(5))
    data["test_codes"][data["test_sources"] == "new"] = _codes("a", 50, np.random.default_rng(6))
    keep = data["test_sources"] != "other"  # only "new" is held out here
    data["test_codes"], data["test_sources"] = data["test_codes"][keep], data["test_sources"][keep]
    (row,) = enrolment_rates(attributor, **data, held_out=["new"], families={"new": "vae"}, shots=[10])
    assert row["heldout_top1"] < 0.8  # "new" and "a" split their rows
    assert row["known_attributed"] < row["known_attributed_before"]  # and a's rows are taken by "new"


def test_draws_are_nested_per_source() -> None:
    sources = np.array(["a"] * 5 + ["new"] * 30 + ["other"] * 30, dtype=object)
    picked = enrolment_draws(sources, ["new", "other"], [5, 25], seed=0)
    assert len(picked) == 50 and list(sources[picked]) == ["new"] * 25 + ["other"] * 25
    assert len(set(picked.tolist())) == 50
    assert np.array_equal(picked, enrolment_draws(sources, ["new", "other"], [25], seed=0))  # same order, any k
    assert not np.array_equal(picked, enrolment_draws(sources, ["new", "other"], [25], seed=1))
    # A source with fewer rows gives them all; scoring it then refuses the k it cannot meet (next test).
    assert sorted(enrolment_draws(sources, ["a"], [5, 25]).tolist()) == [0, 1, 2, 3, 4]


def test_more_shots_than_train_rows_are_refused() -> None:
    attributor, data = _world()
    with pytest.raises(ValueError, match="enrolling 'new' from 21 images needs 21 train rows; it has 20"):
        enrolment_rates(attributor, **data, held_out=["new"], families={"new": "vae"}, shots=[21])
