"""Fisher discriminant ratio against a direct scatter-matrix formula, and the linear probe at its extremes."""

from __future__ import annotations

import numpy as np
import torch

from causalprint.evaluation import fisher_discriminant_ratio, linear_probe_accuracy


def _blobs(spread: float, n: int = 100, d: int = 5, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)) * spread
    y = np.repeat(np.arange(classes), n)
    return centres[y] + rng.normal(size=(classes * n, d)), y


def _fdr_by_scatter_matrices(x: np.ndarray, y: np.ndarray) -> float:
    mu = x.mean(axis=0)
    s_b = np.zeros((x.shape[1],) * 2)
    s_w = np.zeros_like(s_b)
    for c in np.unique(y):
        xc = x[y == c]
        d = (xc.mean(axis=0) - mu)[:, None]
        s_b += len(xc) * d @ d.T
        s_w += (xc - xc.mean(axis=0)).T @ (xc - xc.mean(axis=0))
    return float(np.trace(s_b) / np.trace(s_w))


def test_fdr_matches_the_scatter_matrix_definition() -> None:
    for spread in (0.1, 10.0):
        x, y = _blobs(spread)
        assert np.isclose(fisher_discriminant_ratio(x, y), _fdr_by_scatter_matrices(x, y), rtol=1e-10)
    x, y = _blobs(10.0)
    as_torch = fisher_discriminant_ratio(torch.from_numpy(x), torch.from_numpy(y))
    assert np.isclose(as_torch, _fdr_by_scatter_matrices(x, y))


def test_fdr_is_large_for_separated_and_small_for_overlapping_blobs() -> None:
    assert fisher_discriminant_ratio(*_blobs(20.0)) > 50
    assert fisher_discriminant_ratio(*_blobs(0.05)) < 0.05


def test_probe_is_perfect_on_separable_and_at_chance_on_random_labels() -> None:
    x, y = _blobs(10.0, n=120)
    idx = np.random.default_rng(1).permutation(len(y))
    train, test = idx[:240], idx[240:]
    assert linear_probe_accuracy(x[train], y[train], x[test], y[test]) > 0.98

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(600, 20)), rng.integers(0, 2, 600)
    assert 0.38 < linear_probe_accuracy(x[:300], y[:300], x[300:], y[300:]) < 0.62


def test_probe_reduces_wide_features_with_pca() -> None:
    x, y = _blobs(3.0, n=40, d=400)
    assert linear_probe_accuracy(x[::2], y[::2], x[1::2], y[1::2], max_dims=16) > 0.9
