"""OursMethod's architecture answers: the architecture head where the model has one, pooled class probabilities
where it has not."""

from __future__ import annotations

import numpy as np
import torch

from causalprint.attribution import CausalDecoupler, DecouplerConfig
from causalprint.attribution.openset import Prototypes
from causalprint.attribution.registry import LoadedAttributor
from causalprint.attribution.training import Calibration
from causalprint.evaluation.methods import OursMethod

D = 12
CLASSES = ["dcgan", "dcgan-twin", "ddpm", "real"]
ARCH_OF = {"dcgan": "dcgan", "dcgan-twin": "dcgan", "ddpm": "ddpm", "real": "real"}
FAMILIES = {"dcgan": "gan", "dcgan-twin": "gan", "ddpm": "diffusion", "real": "real"}


def _method(w_arch: float, x: np.ndarray) -> OursMethod:
    torch.manual_seed(0)
    config = DecouplerConfig(input_dim=D, num_classes=len(CLASSES), class_names=CLASSES, hidden=16, fp_dim=4,
                             content_dim=4, architectures=[ARCH_OF[n] for n in CLASSES], w_arch=w_arch)
    model = CausalDecoupler(config)
    model.fit_input_statistics(torch.from_numpy(x))
    model.eval()
    codes = model.predict_codes(x)
    calibration = Calibration(class_names=CLASSES, families=FAMILIES, temperature=1.0, threshold=0.0,
                              proto_temperature=1.0, proto_threshold=0.0,
                              prototypes=Prototypes().fit(codes.fp, [CLASSES[i % 4] for i in range(len(x))]),
                              target_tpr=0.95, family_threshold=0.9)
    attributor = LoadedAttributor(model=model, calibration=calibration,
                                  requirements={"columns": ["a.dct", "b.fourier"]})
    return OursMethod(attributor, source="logits")


def _inputs(x: np.ndarray) -> dict[str, np.ndarray]:
    # Out of order on purpose: the method concatenates the columns in the order its requirements name them.
    return {"b.fourier": x[:, 5:], "a.dct": x[:, :5]}


def test_ours_names_the_architecture_with_its_head() -> None:
    x = np.random.default_rng(0).normal(size=(64, D)).astype(np.float32)
    method = _method(1.0, x)
    assert method.attributor.model.arch_head is not None
    answers = method.predict_architecture(_inputs(x), ARCH_OF)
    assert np.array_equal(answers, method.attributor.model.predict_architecture(x))
    assert set(answers) <= {"dcgan", "ddpm", "real"}


def test_without_a_head_ours_pools_its_class_probabilities() -> None:
    x = np.random.default_rng(1).normal(size=(64, D)).astype(np.float32)
    method = _method(0.0, x)
    assert method.attributor.model.arch_head is None
    # Pooled by hand: softmax of the logits (temperature 1), summed over each architecture's classes.
    logits = method.attributor.model.predict_codes(x).logits
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    pooled = np.stack([probs[:, 0] + probs[:, 1], probs[:, 2], probs[:, 3]], axis=1)
    expected = np.array(["dcgan", "ddpm", "real"], dtype=object)[pooled.argmax(1)]
    assert np.array_equal(method.predict_architecture(_inputs(x), ARCH_OF), expected)
