"""OursMethod's architecture answers: the model's own rule (its architecture head, or without one its calibrated
class probabilities pooled per architecture), the same answer a scan gives."""

from __future__ import annotations

import numpy as np
import torch

from causalprint.attribution import CausalDecoupler, DecouplerConfig
from causalprint.attribution.calibration import Calibration
from causalprint.attribution.openset import Prototypes
from causalprint.evaluation.methods import OursMethod
from causalprint.scan.image_attributor import ImageAttributor
from causalprint.tracking.artifacts import LoadedAttributor

D = 12
CLASSES = ["dcgan", "dcgan-twin", "ddpm", "real"]
ARCH_OF = {"dcgan": "dcgan", "dcgan-twin": "dcgan", "ddpm": "ddpm", "real": "real"}
FAMILIES = {"dcgan": "gan", "dcgan-twin": "gan", "ddpm": "diffusion", "real": "real"}
TEMPERATURE = 2.0  # the logits' calibrated temperature; not 1, so that a path that ignored it would show


def _method(w_arch: float, x: np.ndarray, architectures: list[str] | None = None) -> OursMethod:
    torch.manual_seed(0)
    archs = [ARCH_OF[n] for n in CLASSES] if architectures is None else architectures
    config = DecouplerConfig(
        input_dim=D,
        num_classes=len(CLASSES),
        class_names=CLASSES,
        hidden=16,
        fp_dim=4,
        content_dim=4,
        architectures=archs or None,
        w_arch=w_arch,
    )
    model = CausalDecoupler(config)
    model.fit_input_statistics(torch.from_numpy(x))
    model.eval()
    codes = model.predict_codes(x)
    calibration = Calibration(
        class_names=CLASSES,
        families=FAMILIES,
        temperature=TEMPERATURE,
        threshold=0.0,
        proto_temperature=0.5,
        proto_threshold=0.0,
        prototypes=Prototypes().fit(codes.fp, [CLASSES[i % 4] for i in range(len(x))]),
        target_tpr=0.95,
        family_threshold=0.9,
    )
    attributor = LoadedAttributor(
        model=model, calibration=calibration, requirements={"columns": ["a.dct", "b.fourier"]}
    )
    return OursMethod(attributor)  # the prototype path, as a scan decides by default


def _inputs(x: np.ndarray) -> dict[str, np.ndarray]:
    # Out of order on purpose: the method concatenates the columns in the order its requirements name them.
    return {"b.fourier": x[:, 5:], "a.dct": x[:, :5]}


def _scan(method: OursMethod, x: np.ndarray) -> dict[str, np.ndarray]:
    """The columns a scan writes for rows whose vectors are ``x``. The pipeline is assembled without its
    constructor (which needs a registry and a reference model): only its decision step is tested."""
    pipeline = ImageAttributor.__new__(ImageAttributor)
    pipeline.attributor = method.attributor
    pipeline.decider = method.attributor.calibration.attributor("prototypes")
    pipeline.class_names, pipeline.model_version, pipeline.reference_id = CLASSES, "models:/test/1", "ref"
    config = method.attributor.model.config
    pipeline._class_architecture = dict(zip(config.class_names, config.architectures or ()))
    pipeline.vectors = lambda batch: x  # the images' vectors, as the residual and feature steps would make them
    return pipeline({"ok": np.ones(len(x), dtype=bool), "image": np.zeros((len(x), 1, 1, 3), np.uint8)})


def _scanned(method: OursMethod, x: np.ndarray) -> np.ndarray:
    return _scan(method, x)["architecture"]


def _assert_scan_agrees(method: OursMethod, x: np.ndarray, evaluated: np.ndarray) -> None:
    """A row that names a source names that source's architecture (never a contradiction); a row the decision
    leaves unknown names the evaluation's answer (an unseen instance of a known architecture)."""
    out = _scan(method, x)
    named = np.array([ARCH_OF.get(p, "") for p in out["predicted"]], dtype=object)
    expected = np.where(out["unknown"], evaluated, named)
    assert np.array_equal(out["architecture"], expected)


def test_ours_names_the_architecture_with_its_head() -> None:
    x = np.random.default_rng(0).normal(size=(64, D)).astype(np.float32)
    method = _method(1.0, x)
    assert method.attributor.model.arch_head is not None
    answers = method.predict_architecture(_inputs(x), ARCH_OF)
    assert np.array_equal(answers, method.attributor.model.predict_architecture(x))
    assert set(answers) <= {"dcgan", "ddpm", "real"}
    _assert_scan_agrees(method, x, answers)


def test_without_a_head_the_scan_and_the_evaluation_pool_the_calibrated_probabilities() -> None:
    x = np.random.default_rng(1).normal(size=(256, D)).astype(np.float32)
    method = _method(0.0, x)
    assert method.attributor.model.arch_head is None
    # Pooled by hand: softmax of the logits at the calibrated temperature, summed over each architecture's classes.
    logits = method.attributor.model.predict_codes(x).logits / TEMPERATURE
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    pooled = np.stack([probs[:, 0] + probs[:, 1], probs[:, 2], probs[:, 3]], axis=1)
    expected = np.array(["dcgan", "ddpm", "real"], dtype=object)[pooled.argmax(1)]
    # Rows where the best class belongs to another architecture than the pooled answer: the pooled one wins.
    best_class = np.array([ARCH_OF[CLASSES[k]] for k in logits.argmax(1)], dtype=object)
    assert (best_class != expected).any()
    evaluated = method.predict_architecture(_inputs(x), ARCH_OF)
    assert np.array_equal(evaluated, expected)
    _assert_scan_agrees(method, x, evaluated)


def test_a_model_without_class_architectures_pools_by_the_evaluations_map() -> None:
    x = np.random.default_rng(2).normal(size=(64, D)).astype(np.float32)
    legacy = _method(0.0, x, architectures=[])  # saved before models recorded their classes' architectures
    assert legacy.attributor.model.arch_names == []
    assert set(_scanned(legacy, x)) == {""}  # a scan leaves the column empty
    # With the evaluation's map, the answer is the one the model would give had it recorded the architectures.
    assert np.array_equal(
        legacy.predict_architecture(_inputs(x), ARCH_OF), _method(0.0, x).predict_architecture(_inputs(x), ARCH_OF)
    )
