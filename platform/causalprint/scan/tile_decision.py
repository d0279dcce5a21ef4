"""The decision for an image read as several tiles: one rule, used by the scan, the API and enrolment.

The rule, for an image of ``n`` tiles ``t`` (``n = 1`` for an image read whole, where it is today's decision):

1. each tile's class scores ``s_t`` ``[K]``: its cosine similarities to the prototypes (``decision: prototypes``)
   or its logits (``logits``);
2. the image's scores are their mean, ``s = mean_t s_t``. With the temperature ``T`` of the calibration,
   ``softmax(s / T)`` is the renormalised geometric mean of the tiles' calibrated probabilities, i.e. the mean of
   their log-probabilities: every tile's evidence counts, and one confident tile cannot outvote the rest;
3. the usual open-set decision on ``s``: calibrated probabilities, the known-ness score (the highest mean
   similarity, or the highest probability) against the class's threshold, then the family fallback
   (:meth:`~causalprint.attribution.openset.OpenSetAttributor.decide`). The architecture is read from the mean of
   the tiles' class (or architecture-head) logits, the same mean.

The spread kept beside it: how many tiles decide the same label on their own, and the lowest and highest of the
tiles' top calibrated probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalprint.attribution.model import Codes
from causalprint.attribution.openset import Attribution, OpenSetAttributor


def per_image(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean over each image's consecutive rows: ``[sum(counts), ...]`` -> ``[len(counts), ...]``; every count
    must be at least 1. Counts of 1 give the rows back unchanged."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or (counts < 1).any() or counts.sum() != len(values):
        raise ValueError(f"counts {counts.tolist()[:8]} do not split {len(values)} rows into images of >= 1 row")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    sums = np.add.reduceat(np.asarray(values, dtype=np.float64), starts, axis=0)
    return sums / counts.reshape(-1, *([1] * (sums.ndim - 1)))


def image_codes(codes: Codes, counts: np.ndarray) -> Codes:
    """Each image's :class:`Codes` from its tiles' (the mean of each; ``fp`` of L2-normalised tile codes, the
    prototypes' own arithmetic, so an image of ``n`` tiles weighs as one sample when enrolled)."""
    fp = np.asarray(codes.fp, dtype=np.float64)
    unit = fp / np.maximum(np.linalg.norm(fp, axis=1, keepdims=True), 1e-12)
    return Codes(
        fp=per_image(unit, counts),
        content=per_image(codes.content, counts).astype(np.float32),
        logits=per_image(codes.logits, counts).astype(np.float32),
        arch_logits=None if codes.arch_logits is None else per_image(codes.arch_logits, counts).astype(np.float32),
    )


@dataclass(frozen=True)
class TileDecisions:
    """The decisions of ``N`` images from their tiles: ``decisions`` and ``probabilities`` ``[N, K]`` (of the
    aggregate), ``codes`` (:func:`image_codes`), and the spread: ``tiles`` ``[N]``, ``agreeing`` ``[N]`` (tiles
    whose own decision is the image's label) and ``top_min``/``top_max`` ``[N]`` (the tiles' top probability)."""

    decisions: list[Attribution]
    probabilities: np.ndarray
    codes: Codes
    tiles: np.ndarray
    agreeing: np.ndarray
    top_min: np.ndarray
    top_max: np.ndarray


def decide_tiles(decider: OpenSetAttributor, codes: Codes, counts: np.ndarray) -> TileDecisions:
    """The module's rule over tile ``codes`` ``[sum(counts), ...]``, ``counts[i]`` consecutive rows per image."""
    # 1. each tile's class scores
    scores = decider.class_scores(codes=codes.fp, logits=codes.logits)
    # 2.-3. the image's scores are their mean; the usual decision on it
    probabilities, decisions = decider.decide(per_image(scores, counts))
    # The spread: each tile decided on its own.
    tile_probs, tile_decisions = decider.decide(scores)
    image_of = np.repeat(np.arange(len(counts)), counts)
    same = np.array([d.label == decisions[i].label for d, i in zip(tile_decisions, image_of)], dtype=np.int64)
    starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
    top = tile_probs.max(1)
    return TileDecisions(
        decisions=decisions,
        probabilities=probabilities,
        codes=image_codes(codes, counts),
        tiles=np.asarray(counts, dtype=np.int32),
        agreeing=np.add.reduceat(same, starts).astype(np.int32),
        top_min=np.minimum.reduceat(top, starts).astype(np.float32),
        top_max=np.maximum.reduceat(top, starts).astype(np.float32),
    )
