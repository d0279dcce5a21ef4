"""PNG figures for reports and MLflow, drawn on matplotlib's Agg canvas without pyplot's global state: a
confusion matrix, the fingerprint codes in 2-D, example images of content-shift copies."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from causalprint.storage import Storage


def agg_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on the Agg canvas, without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def confusion_matrix_png(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], path: str | Path
) -> np.ndarray:
    """Plot the row-normalised confusion matrix (rows: true source) with counts; returns the counts ``[K, K]``."""
    k = len(class_names)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig = agg_figure(1.2 + 0.6 * k, 1.0 + 0.6 * k)
    ax = fig.add_subplot()
    ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if rates[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path)
    return counts


def fingerprint_plot_png(z_fp: np.ndarray, labels: Sequence[str], path: str | Path) -> np.ndarray:
    """Scatter the first two principal components of the fingerprint codes ``[N, F]``, one colour per label;
    returns the 2-D points ``[N, 2]``."""
    z = np.asarray(z_fp, dtype=np.float64)
    centred = z - z.mean(0)
    # PCA by SVD: the rows of vt are the principal directions.
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred[:, :1], np.zeros(len(z))]
    fig = agg_figure(6, 5)
    ax = fig.add_subplot()
    label_array = np.asarray(labels, dtype=object)
    for label in sorted(set(label_array.tolist())):
        m = label_array == label
        ax.scatter(points[m, 0], points[m, 1], s=8, label=str(label), alpha=0.7)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("fingerprint codes z_fp")
    ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    fig.savefig(path)
    return points


def shift_examples_png(
    storage: Storage, examples: dict[str, list[str]], captions: dict[str, str], path: str | Path
) -> None:
    """One row per shift copy: its example images side by side, labelled with the copy's name and caption (e.g.
    how often its architecture was named). Shows what a misread copy looks like next to the others."""
    fig = agg_figure(1.0 * max(len(u) for u in examples.values()) + 2.8, 0.95 * len(examples) + 0.3)
    axes = fig.subplots(len(examples), 1, squeeze=False)[:, 0]
    for ax, (copy, uris) in zip(axes, examples.items()):
        tiles = [Image.open(io.BytesIO(storage.read_bytes(uri))).convert("RGB") for uri in uris]
        size = tiles[0].size
        ax.imshow(np.concatenate([np.asarray(t.resize(size)) for t in tiles], axis=1), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"{copy}\n{captions.get(copy, '')}", rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
