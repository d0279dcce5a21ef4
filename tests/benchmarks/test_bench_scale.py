"""The scale benchmark on a small archive: a child S3 server filled with tiny PNGs, the whole listing measured, one
shard scanned end to end, and every figure written with its command."""

from __future__ import annotations

import pytest
from scan_world import World

from causalprint.cli import main
from causalprint.data.parts import read_parts

pytestmark = pytest.mark.slow


def test_tiny_scale_benchmark_lists_scans_and_writes_its_figures(attribution_world: World, tmp_path, capsys) -> None:
    world = attribution_world
    results = tmp_path / "results.md"
    args = [
        "bench",
        "scale",
        "--preset",
        "tiny",
        "--results",
        str(results),
        "--set",
        f"storage.root={world.storage.root}",
        "--set",
        f"mlflow.tracking_uri={world.tracking_uri}",
    ]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "listing: 2000 objects in 20 pages" in out, out
    # A chunk gathers whole listing pages (at least chunk_size files): the shard's 40 files are one page of 100.
    assert "scan: 40 images (0 errors)" in out and "largest chunk 40" in out, out
    text = results.read_text()
    assert "<!-- BEGIN scale-tiny -->" in text and "Command: `" in text
    for needle in ("| objects in the archive (16x16 PNGs, 40 per shard prefix) | 2000 |", "2000 objects, 20 pages"):
        assert needle in text, text
    report = next(p for p in world.storage.list_files("scans/scale-tiny") if p.uri.endswith(".parquet")).uri
    rows = read_parts(world.storage, report.rsplit("/run=", 1)[0], columns=["uri", "ok"])
    assert rows.num_rows == 40 and all(rows["ok"].to_pylist())
