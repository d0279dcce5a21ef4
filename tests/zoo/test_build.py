"""The tiny zoo end to end: written to a real S3 server, manifest matching files, cached reruns."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from causalprint.jobs import job_config
from causalprint.storage import Storage
from causalprint.zoo.manifest import read_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built_zoo(tiny_zoo_s3: Storage) -> tuple[Storage, dict]:
    return tiny_zoo_s3, tiny_zoo_s3.read_json(tiny_zoo_s3.uri("zoo/tiny/zoo_report.json"))


def test_manifest_matches_the_files(built_zoo) -> None:
    storage, report = built_zoo
    manifest = read_manifest(storage, report["manifest"])
    assert report["manifest"].startswith("s3://zoo-build/cp/")
    files = {f.uri for f in storage.list_files(storage.uri("zoo/tiny/images"), (".png",))}
    listed = manifest["uri"].to_pylist()
    assert len(listed) == len(set(listed)) == len(files)
    assert set(listed) == files
    cfg = job_config("zoo build", "tiny", environ={}).zoo
    per_source = {s: manifest["source"].to_pylist().count(s) for s in cfg.sources}
    assert per_source == {s: sum(cfg.splits.values()) for s in cfg.sources}


def test_each_image_is_in_its_sources_folder_and_identically_encoded(built_zoo) -> None:
    storage, report = built_zoo
    manifest = read_manifest(storage, report["manifest"]).to_pylist()
    for row in manifest[:: max(1, len(manifest) // 40)]:
        assert f"/images/{row['source']}/{row['split']}/" in row["uri"]
        data = storage.read_bytes(row["uri"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(data)) as img:
            assert img.mode == "RGB" and img.size == (16, 16)
    groups = {r["source"]: r["content_group"] for r in manifest}
    assert groups["dcgan"] != groups["dcgan-shift"]
    assert {r["family"] for r in manifest} == {"real", "gan", "diffusion", "vae"}


def test_generated_images_are_not_copies_of_each_other(built_zoo) -> None:
    storage, report = built_zoo
    manifest = read_manifest(storage, report["manifest"]).to_pylist()

    def first(source: str) -> np.ndarray:
        row = next(r for r in manifest if r["source"] == source)
        return np.asarray(Image.open(io.BytesIO(storage.read_bytes(row["uri"]))))

    assert not np.array_equal(first("dcgan"), first("dcgan-twin"))


def test_report_has_size_time_and_quality(built_zoo) -> None:
    _, report = built_zoo
    for name, source in report["sources"].items():
        if name == "real":
            continue
        assert source["parameters"] > 0 and source["train_seconds"] >= 0
        assert np.isfinite(source["kid"])
    assert set(report["quality_floor"]) == {"objects", "scenes"}


def test_rerun_reuses_weights_and_samples(built_zoo, s3_endpoint: str) -> None:
    from causalprint.zoo.build import build_zoo

    storage, first = built_zoo
    cfg = job_config("zoo build", "tiny", environ={}).zoo
    again = build_zoo(storage, cfg)
    assert all(s["reused_samples"] for s in again["sources"].values())
    assert again["images"] == first["images"]
