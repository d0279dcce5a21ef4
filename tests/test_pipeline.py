"""The main job on embedded defaults (local disk), and the inventory of a damaged collection."""

from __future__ import annotations

import pytest

from causalprint.cli import main
from causalprint.scan.report import default_output
from causalprint.storage import Storage, StorageConfig

pytestmark = pytest.mark.slow


def test_main_job_builds_trains_registers_and_scans_the_demo_zoo(tmp_path, ray_session, capsys) -> None:
    import mlflow

    root = tmp_path / "store"
    results = tmp_path / "results.md"
    assert main(["run", "--preset", "tiny", "--set", f"storage.root={root}", "--results", str(results)]) == 0
    storage = Storage(StorageConfig(root=str(root)))
    out = capsys.readouterr().out
    assert "dcgan-twin" in out and "real-vs-real floor" in out  # the zoo's table
    # Beside the scan's answers, how far to trust them: accuracy and recall per source on held-out images.
    assert "test accuracy" in out and "| dcgan-twin |" in out.split("recall on held-out images")[1]
    # --results: one section with the time per stage, written from the five presets it names.
    section = results.read_text()
    assert "<!-- BEGIN main-tiny -->" in section and "| **whole job** |" in section
    assert all(f"`{stage}/tiny` (sha256 `" in section for stage in ("zoo", "reference", "extract", "train", "scan"))

    # The attributor is registered and the gate made it champion; the scan used that version.
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("causalprint-attributor-tiny", "champion")
    images = storage.uri("zoo/tiny/images")
    # The scan's own report folder, derived from its source (a scan of another folder gets another one).
    output = default_output("scans/tiny", images, "zoo/tiny/images")
    report = storage.uri(output, f"model=causalprint-attributor-tiny-v{champion.version}")
    summary = storage.read_json(f"{report}/_summary.json")
    assert summary["model_version"] == f"models:/causalprint-attributor-tiny/{champion.version}"
    assert summary["images"] == summary["attributed"] == 14 * 12 and summary["errors"] == 0
    # Each source's _DONE.json marker is skipped by the default ignore pattern, and counted.
    assert summary["run"]["not_listed"] == {"matches ignore pattern '_DONE.json'": 14}
    assert sum(summary["by_predicted"].values()) == 14 * 12
    assert f"scan of {storage.uri('zoo/tiny/images')}" in out and "images/s" in out

    # Damage the stored collection: the inventory reports each bad file with its reason, the rest are read.
    victim = storage.list_files(images, (".png",))[0].uri
    storage.write_bytes(victim, storage.read_bytes(victim)[:40])
    storage.write_bytes(storage.uri("zoo/tiny/images/extra/notes.jpg"), b"just text")
    code = main(
        [
            "inventory",
            "zoo/tiny/images",
            "--manifest",
            "zoo/tiny/manifest.parquet",
            "--set",
            f"storage.root={root}",
            "--set",
            "intake.size=16",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert victim in out and "truncated" in out
    assert "notes.jpg" in out and "not_an_image" in out
    assert "_DONE.json" not in out.split("failures", 1)[1]  # skipped and counted, not a failure


def test_inventory_refuses_a_prefix_outside_storage(tmp_path, ray_session, capsys) -> None:
    for prefix in ("../elsewhere", "/etc", "s3://other-bucket/x"):
        assert main(["inventory", prefix, "--set", f"storage.root={tmp_path}"]) == 2
        assert "storage root" in capsys.readouterr().err


def test_main_job_refuses_stages_that_do_not_connect(tmp_path, capsys) -> None:
    assert (
        main(
            [
                "run",
                "--preset",
                "tiny",
                "--set",
                f"storage.root={tmp_path}",
                "--set",
                "scan.reference=models/reference/other",
                "--set",
                "scan.model=models:/someone-else@champion",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "scan.reference='models/reference/other'" in err and "someone-else" in err
    assert not list(tmp_path.iterdir())  # refused before anything was written
