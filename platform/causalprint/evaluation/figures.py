"""Figures of the evaluation that a person reads by looking: example images of each content-shift copy."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from causalprint.attribution.registry import _figure
from causalprint.storage import Storage


def shift_examples_png(storage: Storage, examples: dict[str, list[str]], captions: dict[str, str],
                       path: str | Path) -> None:
    """One row per shift copy: its example images side by side, labelled with the copy's name and caption (e.g.
    how often its architecture was named). Shows what a misread copy looks like next to the others."""
    fig = _figure(1.0 * max(len(u) for u in examples.values()) + 2.8, 0.95 * len(examples) + 0.3)
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
