"""The throughput benchmark on the tiny zoo: every figure measured and written with its command."""

from __future__ import annotations

import pytest

from causalprint.benchmarks.extract_throughput import balanced_uris, matmul_gflops
from causalprint.cli import main
from causalprint.storage import Storage
from causalprint.storage.folders import upload_folder
from causalprint.zoo.manifest import read_manifest

pytestmark = pytest.mark.slow


def test_tiny_benchmark_writes_its_tables(tiny_zoo_s3: Storage, tiny_reference_dir, tmp_path, capsys) -> None:
    storage = tiny_zoo_s3
    upload_folder(storage, tiny_reference_dir, "models/reference/tiny")
    results = tmp_path / "results.md"
    args = [
        "bench",
        "extract",
        "--preset",
        "tiny",
        "--results",
        str(results),
        "--set",
        f"storage.root={storage.root}",
        "--set",
        f"storage.endpoint_url={storage.endpoint_url}",
    ]
    assert main(args) == 0
    text = results.read_text()
    assert "<!-- BEGIN throughput-tiny -->" in text and "Command: `" in text
    for needle in (
        "Dense fp32 matmul",
        "| dire (steps=2) | 4 |",
        "| one_step | 1 |",
        "plain single-process loop",
        "Ray Data pipeline",
        "faster per image than dire",
    ):
        assert needle in text
    assert not storage.list_files("bench")  # scratch outputs are removed


def test_balanced_selection_covers_every_source(tiny_zoo_s3: Storage) -> None:
    manifest = read_manifest(tiny_zoo_s3, tiny_zoo_s3.uri("zoo/tiny/manifest.parquet"))
    uris = balanced_uris(manifest, "heldout", 28)
    sources = {u.split("/images/")[1].split("/")[0] for u in uris}
    assert len(uris) == 28 and len(sources) == 14


def test_matmul_rate_is_positive() -> None:
    assert matmul_gflops(128, repeats=2) > 0
