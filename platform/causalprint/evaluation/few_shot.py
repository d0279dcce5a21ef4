"""How well enrolment works: the open-set instance learns each held-out source from ``k`` of its train images, as
``causalprint enrol`` would, and the prototype path is scored on the clean test rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from causalprint.attribution.prototype_enrolment import enrol_source
from causalprint.evaluation.eval_rows import EvalRows
from causalprint.evaluation.methods import OursMethod
from causalprint.tracking.artifacts import LoadedAttributor


def _rates(attributor: LoadedAttributor, codes: np.ndarray, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether the nearest prototype is the row's source (top-1), and whether the open-set decision
    names it (attributed: nearest and past its threshold)."""
    decider = attributor.calibration.attributor("prototypes")
    names = np.array([str(label) for label in attributor.calibration.prototypes.labels_], dtype=object)
    top1 = names[decider.probabilities(codes=codes).argmax(1)] == sources
    attributed = np.array([d.label for d in decider.predict(codes=codes)], dtype=object) == sources
    return top1, attributed


def enrolment_draws(
    train_sources: np.ndarray, held_out: Sequence[str], shots: Sequence[int], seed: int = 0
) -> np.ndarray:
    """Row indices of the train images each enrolment may use: per held-out source, ``max(shots)`` of its rows
    in one order drawn with ``seed``, sources in the order of ``held_out``. A ``k``-shot enrolment takes the first
    ``k`` of its source's, so the draws are nested (the 5 images lie within the 25) and the figures for two ``k``
    differ by the images added, not by a new draw. A source with fewer rows gives them all (and
    :func:`enrolment_rates` refuses a ``k`` it cannot meet)."""
    rng = np.random.default_rng(seed)
    sources = np.asarray(train_sources, dtype=object)
    return np.concatenate([rng.permutation(np.flatnonzero(sources == source))[: max(shots)] for source in held_out])


def score_enrolment(
    attributor: LoadedAttributor,
    train: EvalRows,
    test: EvalRows,
    held_out: Sequence[str],
    families: Mapping[str, str],
    shots: Sequence[int],
    seed: int = 0,
) -> list[dict[str, Any]]:
    """:func:`enrolment_rates` of ``attributor``'s fingerprint codes of the drawn ``train`` rows
    (:func:`enrolment_draws`; only those are encoded) and of the ``test`` rows."""
    drawn = train.subset(enrolment_draws(train.source, held_out, shots, seed))
    ours = OursMethod(attributor, "prototypes")
    return enrolment_rates(
        attributor,
        ours.codes(drawn.inputs).fp,
        drawn.source,
        ours.codes(test.inputs).fp,
        test.source,
        held_out,
        families,
        shots,
    )


def enrolment_rates(
    attributor: LoadedAttributor,
    train_codes: np.ndarray,
    train_sources: np.ndarray,
    test_codes: np.ndarray,
    test_sources: np.ndarray,
    held_out: Sequence[str],
    families: Mapping[str, str],
    shots: Sequence[int],
) -> list[dict[str, Any]]:
    """For each ``k`` of ``shots``: enrol every held-out source into ``attributor`` (trained without them) from
    the first ``k`` of its train codes, in the order given (draw them with :func:`enrolment_draws`), then score
    the test codes. One dict per ``k``: ``heldout_top1``/``heldout_attributed`` over the held-out sources' rows
    (0 before enrolment: no class of theirs exists), ``known_attributed`` over the trained sources' rows after it
    and ``known_attributed_before`` without it (what the new prototypes cost the trained classes)."""
    train_codes = np.asarray(train_codes, dtype=np.float64)
    test_codes = np.asarray(test_codes, dtype=np.float64)
    train_sources = np.asarray(train_sources, dtype=object)
    sources = np.asarray(test_sources, dtype=object)
    new = np.isin(sources, list(held_out))
    _, known_before = _rates(attributor, test_codes[~new], sources[~new])
    out = []
    for k in shots:
        enrolled = attributor
        for source in held_out:
            rows = np.flatnonzero(train_sources == source)
            if len(rows) < k:
                raise ValueError(f"enrolling {source!r} from {k} images needs {k} train rows; it has {len(rows)}")
            enrolled, _ = enrol_source(enrolled, source, families[source], train_codes[rows[:k]])
        top1, attributed = _rates(enrolled, test_codes, sources)
        out.append(
            {
                "shots": int(k),
                "heldout_rows": int(new.sum()),
                "known_rows": int((~new).sum()),
                "heldout_top1": float(top1[new].mean()),
                "heldout_attributed": float(attributed[new].mean()),
                "known_attributed": float(attributed[~new].mean()),
                "known_attributed_before": float(known_before.mean()),
            }
        )
    return out


def format_enrolment(held_out: Sequence[str], seed: int, rows: Sequence[Mapping[str, Any]]) -> str:
    """One sentence per shot count, for the evaluation report."""

    def pct(x: float) -> str:
        return f"{100 * x:.1f} %"

    return (
        f"Enrolment without retraining (the open-set instance; each of {', '.join(held_out)} enrolled from k of "
        f"its train images, drawn with seed {seed} and nested across k, as `causalprint enrol` does; prototype "
        f"path, clean test rows): "
        + "; ".join(
            f"k={r['shots']}: held-out sources nearest to their own prototype {pct(r['heldout_top1'])}, "
            f"attributed to it {pct(r['heldout_attributed'])} of {r['heldout_rows']} rows; trained "
            f"sources attributed {pct(r['known_attributed'])} (before enrolment "
            f"{pct(r['known_attributed_before'])})"
            for r in rows
        )
        + "."
    )
