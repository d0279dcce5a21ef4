"""Closed-set and open-set metrics of a calibrated model on its test rows and the held-out sources."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from causalprint.attribution.calibration import Calibration
from causalprint.attribution.dataset import AttributionData
from causalprint.attribution.model import CausalDecoupler
from causalprint.attribution.openset import auroc, expected_calibration_error, oscr

log = logging.getLogger(__name__)

__all__ = ["evaluate"]


def evaluate(model: CausalDecoupler, calibration: Calibration, data: AttributionData) -> dict[str, float]:
    """Closed-set and open-set metrics on the test rows (``test_*``) and the validation accuracy of the model
    (``selected_val_accuracy``: the per-epoch ``val_accuracy`` is the training history's).

    ``test_accuracy`` is the argmax accuracy on known test rows; ``test_nll``/``test_ece`` of the calibrated
    probabilities; ``test_known_accept`` the share of known test rows that pass the threshold. With unknowns:
    ``test_auroc`` (known vs unknown by known-ness score), ``test_oscr`` and ``test_unknown_reject``. The
    ``proto_`` variants use the prototype path.
    """
    metrics = {
        "selected_val_accuracy": float((model.predict(data.x_val) == data.y_val).mean()) if len(data.y_val) else 0.0
    }
    if not len(data.y_test):
        return metrics
    test = model.predict_codes(data.x_test)
    unknown = model.predict_codes(data.x_unknown) if len(data.x_unknown) else None
    names = calibration.class_names
    sources: tuple[tuple[str, Literal["logits", "prototypes"]], ...] = (
        ("test_", "logits"),
        ("test_proto_", "prototypes"),
    )
    for prefix, source in sources:
        attributor = calibration.attributor(source)
        probs = attributor.probabilities(codes=test.fp, logits=test.logits)
        scores = attributor.scores(codes=test.fp, logits=test.logits)
        correct = probs.argmax(1) == data.y_test
        metrics[f"{prefix}accuracy"] = float(correct.mean())
        metrics[f"{prefix}known_accept"] = float(attributor.accepted(codes=test.fp, logits=test.logits).mean())
        if source == "logits":
            p_true = probs[np.arange(len(data.y_test)), data.y_test]
            metrics["test_nll"] = float(-np.log(np.maximum(p_true, 1e-12)).mean())
            metrics["test_ece"] = expected_calibration_error(probs, data.y_test)
        if unknown is not None:
            u_scores = attributor.scores(codes=unknown.fp, logits=unknown.logits)
            metrics[f"{prefix}auroc"] = auroc(scores, u_scores)
            metrics[f"{prefix}oscr"] = oscr(scores, correct, u_scores)
            metrics[f"{prefix}unknown_reject"] = float(
                (~attributor.accepted(codes=unknown.fp, logits=unknown.logits)).mean()
            )
    log.info(
        "evaluation over %d classes %s: %s", len(names), names, " ".join(f"{k}={v:.3f}" for k, v in metrics.items())
    )
    return metrics
