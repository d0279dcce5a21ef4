"""The main job on embedded defaults (local disk), and the inventory of a damaged collection."""

from __future__ import annotations

import pytest

from causalprint.cli import main
from causalprint.storage import Storage, StorageConfig

pytestmark = pytest.mark.slow


def test_main_job_builds_and_reads_back_the_demo_zoo(tmp_path, ray_session, capsys) -> None:
    root = tmp_path / "store"
    assert main(["run", "--set", f"storage.root={root}"]) == 0
    storage = Storage(StorageConfig(root=str(root)))
    inventory = storage.read_json(storage.uri("zoo/tiny/inventory.json"))
    assert inventory["failed"] == 0 and inventory["missing"] == []
    assert inventory["total"] == inventory["ok"] == 14 * 12
    assert set(inventory["by_source"].values()) == {12}
    out = capsys.readouterr().out
    assert "dcgan-twin" in out and "real-vs-real floor" in out

    # Damage the stored collection: the inventory reports each bad file with its reason, the rest are read.
    images = storage.uri("zoo/tiny/images")
    victim = storage.list_files(images, (".png",))[0].uri
    storage.write_bytes(victim, storage.read_bytes(victim)[:40])
    storage.write_bytes(storage.uri("zoo/tiny/images/extra/notes.jpg"), b"just text")
    code = main(["inventory", "zoo/tiny/images", "--manifest", "zoo/tiny/manifest.parquet",
                 "--set", f"storage.root={root}", "--set", "intake.size=16"])
    assert code == 0
    out = capsys.readouterr().out
    assert victim in out and "truncated" in out
    assert "notes.jpg" in out and "not_an_image" in out


def test_inventory_refuses_a_prefix_outside_storage(tmp_path, ray_session, capsys) -> None:
    for prefix in ("../elsewhere", "/etc", "s3://other-bucket/x"):
        assert main(["inventory", prefix, "--set", f"storage.root={tmp_path}"]) == 2
        assert "storage root" in capsys.readouterr().err
