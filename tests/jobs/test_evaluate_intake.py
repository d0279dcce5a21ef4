"""``causalprint evaluate-intake`` on the tests' world: 32 px mosaics of its 16 px sources (each quarter a fresh
image of the mosaic's source), scanned as native tiles and resized, and scored per source against their manifest."""

from __future__ import annotations

import pyarrow as pa
import pytest
from scan_world import SOURCES, World, write_mosaics

from causalprint.cli import main
from causalprint.data.parts import read_parts
from causalprint.zoo.manifest import MANIFEST_SCHEMA

pytestmark = pytest.mark.slow


def test_both_intake_modes_are_scanned_and_scored_against_the_manifest(attribution_world: World, tmp_path) -> None:
    world, storage = attribution_world, attribution_world.storage
    mosaics = write_mosaics(storage, "intake-tiny/images", per_source=3, seed=11)
    source_of = {uri: uri.rsplit("/", 1)[1].split("-", 1)[0] for uri in mosaics}
    rows = [
        {"uri": u, "source": s, "arch": s, "family": SOURCES[s], "content_group": "synthetic", "seed": 0}
        | {"split": "heldout", "index": i}
        for i, (u, s) in enumerate(source_of.items())
    ]
    storage.write_parquet("intake-tiny/manifest.parquet", pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA))
    results = tmp_path / "results.md"
    args = ["evaluate-intake", "--preset", "tiny", "--results", str(results)]
    args += ["--set", f"storage.root={storage.root}", "--set", f"mlflow.tracking_uri={world.tracking_uri}"]
    assert main(args) == 0
    text = results.read_text()
    assert "<!-- BEGIN intake-tiny -->" in text and "| tiles |" in text and "| resize |" in text
    for mode, read_as in (("tiles", "tiles"), ("resize", "resize")):
        report = next(f.uri for f in storage.list_files(f"scans/tiny/{mode}") if f.uri.endswith(".parquet"))
        table = read_parts(storage, report.rsplit("/run=", 1)[0], columns=["uri", "predicted", "intake"])
        assert sorted(table["uri"].to_pylist()) == sorted(mosaics) and set(table["intake"].to_pylist()) == {read_as}
        # The table's "all" row is the share of the report's rows that name their mosaic's source.
        right = sum(p == source_of[u] for u, p in zip(table["uri"].to_pylist(), table["predicted"].to_pylist()))
        cells = next(line for line in text.splitlines() if line.startswith("| **all** |")).split(" | ")
        column = 1 if mode == "tiles" else 4
        assert cells[column] == f"{100 * right / len(mosaics):.1f} %", (mode, cells)
