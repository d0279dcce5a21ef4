"""The node-scaling benchmark on a small archive: for 1 and 2 worker nodes, a fresh local Ray cluster scans its
own shard of the archive end to end, and the figures and the projection are written with their command."""

from __future__ import annotations

import pytest
from scan_world import World

from causalprint.cli import main
from causalprint.data.parts import read_parts
from causalprint.jobs import bench_nodes
from causalprint.runtime.ray_local import ensure_ray

pytestmark = pytest.mark.slow


def test_each_node_count_scans_its_shard_on_a_cluster_of_that_size(attribution_world: World, tmp_path, capsys):
    world = attribution_world
    results = tmp_path / "results.md"
    args = ["bench", "nodes", "--preset", "tiny", "--results", str(results)]
    args += ["--set", f"storage.root={world.storage.root}", "--set", f"mlflow.tracking_uri={world.tracking_uri}"]
    try:
        assert main(args) == 0, capsys.readouterr().err
    finally:
        ensure_ray()  # the job leaves Ray stopped (each count joins a cluster of its own): the session's again
    out = capsys.readouterr().out
    for nodes in (1, 2):
        assert f"{nodes} worker node(s): 24 images in" in out, out
        report = next(
            f.uri for f in world.storage.list_files(f"scans/nodes-tiny/nodes-{nodes}") if f.uri.endswith(".parquet")
        )
        rows = read_parts(world.storage, report.rsplit("/run=", 1)[0], columns=["uri", "ok"])
        uris = rows["uri"].to_pylist()
        # Each count read its own shard, every object once, and every image was attributed.
        assert len(uris) == len(set(uris)) == 24 and all(f"/{nodes - 1:03d}/" in u for u in uris), uris[:3]
        assert all(rows["ok"].to_pylist())
    text = results.read_text()
    assert "<!-- BEGIN nodes-tiny -->" in text and "Command: `" in text
    assert "| 1 | 1 | 24 | 0 |" in text and "| 2 | 2 | 24 | 0 |" in text, text
    assert "| 64 |" in text and "None of the GPU rows was run" in text


def test_the_efficiency_counts_only_node_counts_that_fit_the_cores(monkeypatch) -> None:
    monkeypatch.setattr(bench_nodes.os, "cpu_count", lambda: 2)
    runs = [
        {"worker_nodes": 1, "cpus": 1.0, "steady_images_per_second": 100.0},
        {"worker_nodes": 2, "cpus": 2.0, "steady_images_per_second": 180.0},
        {"worker_nodes": 3, "cpus": 3.0, "steady_images_per_second": 150.0},  # shares 2 cores: not the code's limit
    ]
    assert bench_nodes._efficiency(runs) == 0.9
    assert bench_nodes._efficiency(runs[:1]) is None
