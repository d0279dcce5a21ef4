"""The generated-vs-real head on a world whose answer is known: every generator leaves one shared trace (a shift
along one direction, the stronger) and a weaker trace of its own; real leaves neither. A head trained on one family's
generators must still call the other family generated, keep real real, round-trip through its folder, and turn
the decisions it revises away from the real class."""

from __future__ import annotations

import numpy as np
import pytest

from causalprint.attribution.dataset import AttributionData
from causalprint.attribution.generated import (
    GENERATED_UNKNOWN,
    GeneratedHead,
    GeneratedHeadOptions,
    answer_generated,
    fit_generated_head,
)
from causalprint.attribution.openset import UNKNOWN, Attribution

DIM = 12
SHARED = 0  # the direction every generator shifts
OWN = {"gan-a": 1, "gan-b": 2, "diff-a": 3, "diff-b": 4}


def sample(source: str, n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    if source != "real":
        x[:, SHARED] += 4.0
        x[:, OWN[source]] += 2.0
    return x


def gan_world(seed: int = 0) -> AttributionData:
    """Classes real, gan-a, gan-b (the diffusion family is never trained on); two input columns of 6 dims."""
    rng = np.random.default_rng(seed)
    names = ["gan-a", "gan-b", "real"]
    x_train = np.concatenate([sample(s, 200, rng) for s in names])
    x_val = np.concatenate([sample(s, 100, rng) for s in names])
    return AttributionData(
        class_names=names,
        families={"gan-a": "gan", "gan-b": "gan", "real": "real", "diff-a": "diffusion", "diff-b": "diffusion"},
        architectures={n: n for n in names},
        reference_id="ref@0",
        columns=["one_step.dct", "image.dct"],
        column_dims=[6, 6],
        x_train=x_train,
        y_train=np.repeat(np.arange(3), 200),
        x_val=x_val,
        y_val=np.repeat(np.arange(3), 100),
        x_test=np.zeros((0, DIM), np.float32),
        y_test=np.zeros(0, np.int64),
        x_unknown=np.zeros((0, DIM), np.float32),
    )


def test_a_head_trained_on_one_family_calls_another_generated_and_keeps_real(tmp_path) -> None:
    head = fit_generated_head(gan_world(), GeneratedHeadOptions(keep_real=0.95, steps=200))
    assert head.fitted["val_real_kept"] >= 0.95  # the threshold's own promise, on its validation rows
    rng = np.random.default_rng(1)
    diffusion = np.concatenate([sample("diff-a", 300, rng), sample("diff-b", 300, rng)])
    real = sample("real", 600, rng)
    assert head.is_generated(head.score(diffusion)).mean() > 0.8  # the shared trace carries to a family unseen
    assert (~head.is_generated(head.score(real))).mean() > 0.9

    head.save(tmp_path)
    loaded = GeneratedHead.load(tmp_path)
    assert loaded is not None and loaded.threshold == head.threshold and loaded.columns == head.columns
    np.testing.assert_allclose(loaded.score(diffusion), head.score(diffusion), rtol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generated.json", "generated.safetensors"]
    assert GeneratedHead.load(tmp_path / "none") is None


def test_the_head_reads_only_its_columns() -> None:
    head = fit_generated_head(gan_world(), GeneratedHeadOptions(columns=["image.dct"], steps=50))
    assert head.index.tolist() == list(range(6, 12))
    x = sample("gan-a", 5, np.random.default_rng(2))
    changed = x.copy()
    changed[:, :6] += 100.0  # the other column moves; the head must not
    np.testing.assert_allclose(head.score(changed), head.score(x))
    with pytest.raises(ValueError, match="not among"):
        fit_generated_head(gan_world(), GeneratedHeadOptions(columns=["latent.sl"]))


NAMES = ["ddpm", "dcgan", "real", "stylegan"]
FAMILIES = {"ddpm": "diffusion", "dcgan": "gan", "real": "real", "stylegan": "gan"}


def _decision(label: str, known: bool) -> Attribution:
    return Attribution(label, 0.9, known, FAMILIES.get(label) if known else None, 0.5)


def test_answers_never_read_real_when_the_head_calls_generated() -> None:
    probs = np.array(
        [
            [0.01, 0.01, 0.97, 0.01],  # accepted as real, the head says generated: no family fits -> generated
            [0.01, 0.01, 0.97, 0.01],  # accepted as real, the head agrees -> real
            [0.01, 0.09, 0.80, 0.10],  # unknown, the head says generated; among generators gan has 0.95 -> gan
            [0.05, 0.05, 0.85, 0.05],  # unknown, nearest real, the head says real -> stays unknown
            [0.01, 0.97, 0.01, 0.01],  # a known generator keeps its name whatever the head says
        ]
    )
    probs = np.vstack([probs, [0.5, 0.1, 0.3, 0.1]])  # unknown, nearest ddpm, the head says real -> unknown
    decisions = [
        _decision("real", True),
        _decision("real", True),
        _decision(UNKNOWN, False),
        _decision(UNKNOWN, False),
        _decision("dcgan", True),
        _decision(UNKNOWN, False),
    ]
    scores = np.array([2.0, -2.0, 1.5, -1.0, -3.0, -1.0])
    out = answer_generated(decisions, probs, NAMES, FAMILIES, scores, threshold=0.0, family_threshold=0.9)
    labels = [d.label for d in out]
    assert labels == [GENERATED_UNKNOWN, "real", "gan (exact model unknown)", UNKNOWN, "dcgan", UNKNOWN]
    assert out[2].family == "gan" and not out[2].known and out[0].family is None
    assert all(d.family != "real" for d, s in zip(out, scores) if s > 0)
    assert out[0].confidence == pytest.approx(1 / (1 + np.exp(-2.0)))
