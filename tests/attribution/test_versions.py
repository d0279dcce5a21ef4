"""Registered versions: one parser of model URIs, and the champion loaded by its ``models:/`` URI in a fresh
process (the world: registered_world)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from registered_world import synthetic_data, tracking_store, trained
from test_training import COLUMNS

from causalprint.attribution.dataset import AttributionData
from causalprint.storage import Storage
from causalprint.tracking.artifacts import LoadedAttributor
from causalprint.tracking.versions import MODEL_NAME, load_attributor, parse_model_uri, pin_model_uri, register_version

CHAMPION_URI = f"models:/{MODEL_NAME}@champion"


def test_model_uris_have_one_parser() -> None:
    assert parse_model_uri("models:/causalprint-attributor@champion") == ("causalprint-attributor", None, "champion")
    assert parse_model_uri("models:/causalprint-attributor/12") == ("causalprint-attributor", "12", None)
    for bad in (
        "models:/attr",
        "models:/attr/",
        "models:/attr@",
        "models:/attr/latest",
        "models:/attr/1/2",
        "models:/attr@champion/1",
        "runs:/0a1b/attributor",
        "/some/folder",
    ):
        with pytest.raises(ValueError, match="use models:/<name>@<alias> or models:/<name>/<version>"):
            parse_model_uri(bad)
    # Other URIs are not the registry's: pinned as they are, without asking it.
    assert pin_model_uri("runs:/0a1b/attributor", tracking_uri="sqlite:///nowhere.db") == "runs:/0a1b/attributor"
    with pytest.raises(ValueError, match="is not a registered model URI"):
        pin_model_uri("models:/attr/latest", tracking_uri="sqlite:///nowhere.db")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Storage, AttributionData, str]:
    """(storage, its synthetic data, the MLflow store's URI)."""
    storage, uri = tracking_store(tmp_path_factory.mktemp("versions"))
    return storage, synthetic_data(storage), uri


def test_champion_loads_identically_in_a_fresh_process(store, tmp_path: Path) -> None:
    import mlflow

    _, data, uri = store
    client = mlflow.MlflowClient(uri)
    good = trained(data, "fresh", epochs=4, lr=1e-2, tracking_uri=uri)
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
    assert {
        "model/config.json",
        "model/model.safetensors",
        "calibration.json",
        "prototypes.safetensors",
        "requirements.json",
        "metrics.json",
    } <= files
    assert not [f for f in files if f.endswith((".pkl", ".pt", ".pth", "MLmodel"))]
    assert isinstance(loaded, LoadedAttributor) and loaded.requirements["reference_id"] == "ref-1"
    np.testing.assert_array_equal(loaded.probabilities(x), expected)
    loaded.check_inputs("ref-1", list(COLUMNS))
    with pytest.raises(ValueError, match="reference 'ref-2'"):
        loaded.check_inputs("ref-2", list(COLUMNS))
    report = mlflow.artifacts.download_artifacts(
        run_id=version.run_id, artifact_path="report", dst_path=str(tmp_path / "report"), tracking_uri=uri
    )
    assert {"confusion_matrix.png", "fingerprints.png", "fdr.md", "fdr.json"} <= set(os.listdir(report))
    fdr = {row["space"]: row["fdr"] for row in json.loads(Path(report, "fdr.json").read_text())}
    assert set(fdr) >= {*COLUMNS, "z_fp (fingerprint code)", "z_c (content code)"}
    assert fdr["z_fp (fingerprint code)"] > fdr["z_c (content code)"]

    # A fresh interpreter: only the URI and the tracking store in common with this one.
    script = (
        "import sys, json, numpy as np, torch; torch.set_num_threads(1)\n"
        "from causalprint.tracking.versions import load_attributor\n"
        f"a = load_attributor({CHAMPION_URI!r}, dst=sys.argv[1] + '/there', tracking_uri={uri!r})\n"
        "x = np.load(sys.argv[1] + '/x.npy')\n"
        "np.save(sys.argv[1] + '/probs.npy', a.probabilities(x))\n"
        "json.dump([d.label for d in a.predict(x)], open(sys.argv[1] + '/labels.json', 'w'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "probs.npy"), expected)
    assert json.loads((tmp_path / "labels.json").read_text()) == expected_labels
