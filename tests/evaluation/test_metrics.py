"""Scores of the evaluation job on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from causalprint.evaluation.metrics import (
    architecture_accuracy,
    closed_set_metrics,
    open_set_metrics,
    per_source_precision_recall,
    pooled_architecture,
)

NAMES = ["real", "dcgan", "dcgan-twin"]


def _onehot(pred: list[int], k: int = 3, p: float = 0.9) -> np.ndarray:
    probs = np.full((len(pred), k), (1 - p) / (k - 1))
    probs[np.arange(len(pred)), pred] = p
    return probs


def test_closed_set_metrics_count_what_they_say() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    metrics = closed_set_metrics(y, _onehot([0, 0, 1, 2, 2, 1]), NAMES, twins=["dcgan", "dcgan-twin"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["twin_accuracy"] == pytest.approx(2 / 4)
    assert metrics["macro_f1"] == pytest.approx(np.mean([1.0, 0.5, 0.5]))
    assert metrics["ece"] == pytest.approx(abs(0.9 - 4 / 6), abs=1e-9)  # one bin: confidence 0.9, accuracy 2/3


def test_twin_accuracy_only_when_both_twins_are_classes() -> None:
    metrics = closed_set_metrics(np.array([0, 1]), _onehot([0, 1]), NAMES, twins=["dcgan", "stylegan-twin"])
    assert "twin_accuracy" not in metrics


def test_per_source_precision_and_recall() -> None:
    rows = per_source_precision_recall(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), NAMES)
    by = {r["source"]: r for r in rows}
    assert by["real"]["recall"] == 0.5 and by["real"]["precision"] == 1.0
    assert by["dcgan"]["precision"] == pytest.approx(1 / 3) and by["dcgan-twin"]["recall"] == 0.0
    assert [r["support"] for r in rows] == [2, 1, 1]


def test_architecture_accuracy_forgives_twin_confusion_only() -> None:
    arch_of = {"real": "real", "dcgan": "dcgan", "dcgan-twin": "dcgan"}
    # Shift copies of dcgan: predicted as dcgan-twin is right at the architecture level, as real is wrong.
    one_hot = np.eye(3)[[1, 2, 0, 2]]
    predicted = pooled_architecture(one_hot, NAMES, arch_of)
    assert predicted.tolist() == ["dcgan", "dcgan", "real", "dcgan"]
    assert architecture_accuracy(predicted, ["dcgan"] * 4) == 0.75


def test_pooled_architecture_sums_the_instances_evidence() -> None:
    arch_of = {"real": "real", "dcgan": "dcgan", "dcgan-twin": "dcgan"}
    # real is the single most likely class, but the two dcgan instances together outweigh it.
    probs = np.array([[0.4, 0.3, 0.3], [0.8, 0.1, 0.1]])
    assert pooled_architecture(probs, NAMES, arch_of).tolist() == ["dcgan", "real"]


def test_open_set_metrics_separate_and_mix() -> None:
    perfect = open_set_metrics(np.array([0.9, 0.8]), np.array([True, True]), np.array([0.1, 0.2]))
    assert perfect == {"auroc": 1.0, "oscr": 1.0}
    inverted = open_set_metrics(np.array([0.1, 0.2]), np.array([True, True]), np.array([0.9, 0.8]))
    assert inverted["auroc"] == 0.0
