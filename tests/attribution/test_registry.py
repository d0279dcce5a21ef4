"""The attributor registry: versions with aliases, the evaluation gate, and loading the champion by its
``models:/`` URI in a fresh process.

The models are trained in-process (fit_decoupler) on the synthetic extraction output of test_training, so
these tests need no Ray; test_training covers the Ray path up to the TrainResult that is registered here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import COLUMNS, TINY_MODEL, write_features

from causalprint.attribution.dataset import DataConfig, load_attribution_data
from causalprint.attribution.model import DecouplerConfig, fit_decoupler
from causalprint.attribution.registry import (
    MODEL_NAME,
    GateConfig,
    LoadedAttributor,
    load_attributor,
    parse_model_uri,
    pin_model_uri,
    promote_if_better,
    register_version,
)
from causalprint.attribution.training import TrainResult, calibrate, evaluate
from causalprint.storage import Storage, StorageConfig
from causalprint.tracking.mlflow_setup import MlflowConfig, configure_mlflow

CHAMPION_URI = f"models:/{MODEL_NAME}@champion"


def test_model_uris_have_one_parser() -> None:
    assert parse_model_uri("models:/causalprint-attributor@champion") == ("causalprint-attributor", None, "champion")
    assert parse_model_uri("models:/causalprint-attributor/12") == ("causalprint-attributor", "12", None)
    for bad in ("models:/attr", "models:/attr/", "models:/attr@", "models:/attr/latest", "models:/attr/1/2",
                "models:/attr@champion/1", "runs:/0a1b/attributor", "/some/folder"):
        with pytest.raises(ValueError, match="use models:/<name>@<alias> or models:/<name>/<version>"):
            parse_model_uri(bad)
    # Other URIs are not the registry's: pinned as they are, without asking it.
    assert pin_model_uri("runs:/0a1b/attributor", tracking_uri="sqlite:///nowhere.db") == "runs:/0a1b/attributor"
    with pytest.raises(ValueError, match="is not a registered model URI"):
        pin_model_uri("models:/attr/latest", tracking_uri="sqlite:///nowhere.db")



@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """A storage root with the synthetic features and a sqlite MLflow registry; returns (storage, data, uri)."""
    import mlflow

    root = tmp_path_factory.mktemp("registry")
    storage = Storage(StorageConfig(root=str(root)))
    write_features(storage)
    configure_mlflow(MlflowConfig(), storage)
    data = load_attribution_data(storage, DataConfig(features="features/synth", columns=list(COLUMNS),
                                                     held_out_sources=["gan-a"]))
    return storage, data, mlflow.get_tracking_uri()


def _result(data, name: str, epochs: int, lr: float, tracking_uri: str) -> TrainResult:
    torch.manual_seed(0)
    config = DecouplerConfig(input_dim=data.input_dim, num_classes=data.num_classes,
                             class_names=data.class_names, **TINY_MODEL)
    model = fit_decoupler(data.x_train, data.y_train, config, epochs=epochs, batch_size=16, lr=lr, seed=0)
    calibration = calibrate(model, data)
    return TrainResult(name=name, model=model, calibration=calibration, data=data,
                       metrics=evaluate(model, calibration, data), history=[], checkpoint_uri="(in-process)",
                       epochs_completed=epochs, features="features/synth", tracking_uri=tracking_uri)


def _alias(client, alias: str) -> str:
    return str(client.get_model_version_by_alias(MODEL_NAME, alias).version)


def test_versions_aliases_and_the_gate(registry) -> None:
    import mlflow

    _, data, uri = registry
    client = mlflow.MlflowClient(uri)
    medium = _result(data, "medium", epochs=1, lr=1e-2, tracking_uri=uri)
    bad = _result(data, "bad", epochs=1, lr=1e-5, tracking_uri=uri)
    good = _result(data, "good", epochs=4, lr=1e-2, tracking_uri=uri)
    acc = {r.name: r.metrics["test_accuracy"] for r in (medium, bad, good)}
    assert acc["bad"] < 0.5 <= acc["medium"] < acc["good"], acc
    gate = GateConfig(minimum={"test_accuracy": 0.5}, maximum={"test_ece": 0.5},
                      compare={"test_accuracy": "higher", "test_nll": "lower"}, tolerance=0.0)

    # 1. The first version becomes candidate, then champion: nothing to compare with yet.
    v1 = register_version(medium, client=client)
    assert v1.version == "1" and _alias(client, "candidate") == "1"
    first = promote_if_better(client, v1, thresholds=gate)
    assert first.promoted and first.champion_before is None, first.reasons
    assert _alias(client, "champion") == "1"
    # The version's run holds the evaluation metrics the gate reads, and the version is tagged with its inputs.
    mv = client.get_model_version(MODEL_NAME, "1")
    assert client.get_run(mv.run_id).data.metrics["test_accuracy"] == pytest.approx(acc["medium"])
    assert mv.tags["reference_id"] == "ref-1" and json.loads(mv.tags["columns"]) == list(COLUMNS)
    assert mv.tags["gate.decision"] == "promoted"
    assert not promote_if_better(client, v1, thresholds=gate).promoted  # already champion

    # 2. A worse model: registered (candidate moves), refused by the gate (champion stays).
    v2 = register_version(bad, client=client)
    assert _alias(client, "candidate") == "2"
    refused = promote_if_better(client, v2, thresholds=gate)
    assert not refused.promoted and refused.champion_before == "1"
    failed = [r for r in refused.reasons if r.startswith("FAIL")]
    assert any("minimum 0.5" in r for r in failed) and any("vs champion v1" in r for r in failed), refused.reasons
    assert _alias(client, "champion") == "1"
    assert client.get_model_version(MODEL_NAME, "2").tags["gate.decision"] == "refused"

    # 3. A better model is promoted over the champion.
    v3 = register_version(good, client=client)
    accepted = promote_if_better(client, v3.version, thresholds=gate)
    assert accepted.promoted and accepted.champion_before == "1", accepted.reasons
    assert _alias(client, "champion") == "3"
    # Explicit metrics override the run's: a gate threshold the version cannot meet is refused.
    assert not promote_if_better(client, v1, {"test_accuracy": 0.99, "test_nll": 0.0, "test_ece": 0.9},
                                 thresholds=gate).promoted

    # A tolerance forgives a regression up to its size and no more, and the reason names it.
    held = client.get_run(client.get_model_version(MODEL_NAME, "3").run_id).data.metrics["test_accuracy"]
    lenient = GateConfig(minimum={}, compare={"test_accuracy": "higher"}, tolerance=0.001)
    assert not promote_if_better(client, v2, {"test_accuracy": held - 0.002}, thresholds=lenient).promoted
    assert _alias(client, "champion") == "3"
    near = promote_if_better(client, v2, {"test_accuracy": held - 0.0005}, thresholds=lenient)
    assert near.promoted and any("within 0.001" in r for r in near.reasons), near.reasons


def test_champion_loads_identically_in_a_fresh_process(registry, tmp_path: Path) -> None:
    import mlflow

    _, data, uri = registry
    client = mlflow.MlflowClient(uri)
    good = _result(data, "fresh", epochs=4, lr=1e-2, tracking_uri=uri)
    version = register_version(good, client=client)
    client.set_registered_model_alias(MODEL_NAME, "champion", version.version)

    x = np.concatenate([data.x_test, data.x_unknown])
    np.save(tmp_path / "x.npy", x)
    logits = good.model.predict_codes(x).logits
    expected = good.calibration.attributor().probabilities(logits=logits)
    expected_labels = [a.label for a in good.calibration.attributor().predict(logits=logits)]

    # In-process: the artifacts are safetensors + JSON, and the rebuilt attributor predicts the same.
    loaded = load_attributor(CHAMPION_URI, dst=tmp_path / "here", tracking_uri=uri)
    folder = next((tmp_path / "here").rglob("requirements.json")).parent  # the attributor folder, under dst
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"model/config.json", "model/model.safetensors", "calibration.json", "prototypes.safetensors",
            "requirements.json", "metrics.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pt", ".pth", "MLmodel"))]
    assert isinstance(loaded, LoadedAttributor) and loaded.requirements["reference_id"] == "ref-1"
    np.testing.assert_array_equal(loaded.probabilities(x), expected)
    loaded.check_inputs("ref-1", list(COLUMNS))
    with pytest.raises(ValueError, match="reference 'ref-2'"):
        loaded.check_inputs("ref-2", list(COLUMNS))
    report = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="report",
                                                 dst_path=str(tmp_path / "report"), tracking_uri=uri)
    assert {"confusion_matrix.png", "fingerprints.png", "fdr.md", "fdr.json"} <= set(os.listdir(report))
    fdr = {row["space"]: row["fdr"] for row in json.loads(Path(report, "fdr.json").read_text())}
    assert set(fdr) >= {*COLUMNS, "z_fp (fingerprint code)", "z_c (content code)"}
    assert fdr["z_fp (fingerprint code)"] > fdr["z_c (content code)"]

    # A fresh interpreter: only the URI and the tracking store in common with this one.
    script = (
        "import sys, json, numpy as np, torch; torch.set_num_threads(1)\n"
        "from causalprint.attribution.registry import load_attributor\n"
        f"a = load_attributor({CHAMPION_URI!r}, dst=sys.argv[1] + '/there', tracking_uri={uri!r})\n"
        "x = np.load(sys.argv[1] + '/x.npy')\n"
        "np.save(sys.argv[1] + '/probs.npy', a.probabilities(x))\n"
        "json.dump([d.label for d in a.predict(x)], open(sys.argv[1] + '/labels.json', 'w'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "probs.npy"), expected)
    assert json.loads((tmp_path / "labels.json").read_text()) == expected_labels
