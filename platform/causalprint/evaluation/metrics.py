"""Closed-set, open-set and architecture-level scores of one method on one set of rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from causalprint.attribution.model import architecture_names, pool_by_architecture
from causalprint.attribution.openset import Attribution, auroc, expected_calibration_error, oscr


def closed_set_metrics(
    y: np.ndarray, probs: np.ndarray, class_names: Sequence[str], twins: Sequence[str] = ()
) -> dict[str, float]:
    """Accuracy, macro-F1, ECE and (if both twins are classes) the accuracy on the twins' rows."""
    from sklearn.metrics import f1_score

    pred = probs.argmax(1)
    out = {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, labels=np.arange(len(class_names)), average="macro", zero_division=0)),
        "ece": expected_calibration_error(probs, y),
    }
    if twins and all(t in class_names for t in twins):
        rows = np.isin(y, [list(class_names).index(t) for t in twins])
        out["twin_accuracy"] = float((pred[rows] == y[rows]).mean()) if rows.any() else float("nan")
    return out


def per_source_precision_recall(
    y: np.ndarray, pred: np.ndarray, class_names: Sequence[str]
) -> list[dict[str, float | str | int]]:
    """One row per class: precision, recall and support."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, _, n = precision_recall_fscore_support(y, pred, labels=np.arange(len(class_names)), zero_division=0)
    return [
        {"source": name, "precision": float(p[i]), "recall": float(r[i]), "support": int(n[i])}
        for i, name in enumerate(class_names)
    ]


def pooled_architecture(probs: np.ndarray, class_names: Sequence[str], arch_of: Mapping[str, str]) -> np.ndarray:
    """Each row's most likely architecture ``[N]`` (object array): class probabilities summed per architecture,
    the best architecture answer a source classifier gives (instances of one architecture pool their evidence)."""
    archs = [arch_of[n] for n in class_names]
    return np.array(architecture_names(archs), dtype=object)[pool_by_architecture(probs, archs).argmax(1)]


def architecture_accuracy(predicted_arch: Sequence[str] | np.ndarray, true_arch: Sequence[str] | np.ndarray) -> float:
    """Share of rows whose predicted architecture is the row's (instances of one architecture are one answer)."""
    return float((np.asarray(predicted_arch, dtype=object) == np.asarray(true_arch, dtype=object)).mean())


def open_set_metrics(
    known_scores: np.ndarray, known_correct: np.ndarray, unknown_scores: np.ndarray
) -> dict[str, float]:
    """AUROC (known vs unknown by known-ness score) and OSCR."""
    return {"auroc": auroc(known_scores, unknown_scores), "oscr": oscr(known_scores, known_correct, unknown_scores)}


def decision_shares(sources: Sequence[str], decisions: Sequence[Attribution]) -> list[dict[str, float | str | int]]:
    """What users read, per known source (one row each, in first-seen order, then ``"all"``): the share of its
    images whose open-set decision names it (``correct``), the share turned away as not known (``unknown``: "unknown",
    a family fallback, or "generated (source unknown)") and the share given another known source (``other``)."""
    if len(sources) != len(decisions):
        raise ValueError(f"{len(sources)} sources but {len(decisions)} decisions")
    truth = np.asarray(list(sources), dtype=object)
    correct = np.array([d.known and d.label == t for d, t in zip(decisions, truth)], dtype=bool)
    unknown = np.array([not d.known for d in decisions], dtype=bool)
    rows: list[dict[str, float | str | int]] = []
    for name in [*dict.fromkeys(truth.tolist()), "all"]:
        m = np.ones(len(truth), dtype=bool) if name == "all" else truth == name
        n = int(m.sum())
        rows.append(
            {
                "source": str(name),
                "correct": float(correct[m].mean()) if n else float("nan"),
                "unknown": float(unknown[m].mean()) if n else float("nan"),
                "other": float((~correct[m] & ~unknown[m]).mean()) if n else float("nan"),
                "support": n,
            }
        )
    return rows
