"""Separability of labelled embeddings: Fisher discriminant ratio and a linear probe."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence


def _numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def fisher_discriminant_ratio(X: ArrayLike, y: ArrayLike) -> float:
    """``trace(S_B) / trace(S_W)`` for embeddings ``X`` ``[N, D]`` with labels ``y`` ``[N]``.

    ``S_B = sum_c n_c (mu_c - mu)(mu_c - mu)^T`` (between-class scatter, ``mu`` the overall mean) and
    ``S_W = sum_c sum_{i in c} (x_i - mu_c)(x_i - mu_c)^T`` (within-class scatter); the traces reduce to sums of
    squared distances, so no ``D x D`` matrix is formed. Both are unnormalised sums, so the ratio is invariant to
    scaling ``X`` and grows with class separation: 0 when all class means coincide, inf when every class is a
    single point. Other papers divide by ``C - 1`` and ``N - C`` (an ANOVA F); compare numbers only under one
    definition.
    """
    x = _numpy(X).astype(np.float64)
    labels = _numpy(y)
    if x.ndim != 2 or len(labels) != len(x):
        raise ValueError(f"expected X [N, D] and y [N]; got X {x.shape}, y {labels.shape}")
    classes, inverse = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"need at least two classes, got {len(classes)}")
    counts = np.bincount(inverse).astype(np.float64)
    means = np.zeros((len(classes), x.shape[1]))
    np.add.at(means, inverse, x)
    means /= counts[:, None]
    between = float((counts * ((means - x.mean(axis=0)) ** 2).sum(axis=1)).sum())
    within = float(((x - means[inverse]) ** 2).sum())
    return between / within if within > 0 else float("inf")


def linear_probe_accuracy(
    X_train: ArrayLike,
    y_train: ArrayLike,
    X_test: ArrayLike,
    y_test: ArrayLike,
    seed: int = 0,
    max_dims: int | None = 256,
) -> float:
    """Test accuracy of a multinomial logistic regression trained on ``X_train``.

    Features are standardised with the training statistics; when ``D > max_dims`` they are then reduced by PCA
    (fit on the training set) to ``min(max_dims, N_train)`` dimensions, which keeps lbfgs fast on 3072-d
    spectra and leaves the probe linear in the original features. ``max_dims=None`` skips the PCA.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = _numpy(X_train).astype(np.float64), _numpy(X_test).astype(np.float64)
    steps: list = [StandardScaler()]
    if max_dims is not None and x_train.shape[1] > max_dims:
        steps.append(PCA(n_components=min(max_dims, *x_train.shape), random_state=seed))
    steps.append(LogisticRegression(max_iter=5000, random_state=seed))
    probe = make_pipeline(*steps).fit(x_train, _numpy(y_train))
    return float((probe.predict(x_test) == _numpy(y_test)).mean())
