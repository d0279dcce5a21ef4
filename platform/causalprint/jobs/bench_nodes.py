"""``causalprint bench nodes``: scan throughput against the number of worker nodes of a local Ray cluster, and a
projection to N GPU nodes from a measured per-GPU rate, with its assumptions.

The archive is :mod:`causalprint.benchmarks.s3_archive`'s (tiny PNGs on a local S3 server in a child process),
read as a read-only ``sources`` entry, one shard per measurement so that no run resumes another's report. Each
measurement starts a fresh :mod:`causalprint.runtime.local_cluster` (a head with no CPU for work, and ``n`` worker
nodes of ``cpus_per_node``), joins it as the driver and runs ``causalprint scan``'s code with one actor per node.
The worker nodes share this machine's cores: the sweep measures how the scan spreads over nodes, and flattens
once the nodes ask for more cores than the machine has (the report names both counts).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, TypedDict

from pydantic import Field, model_validator

from causalprint.benchmarks.s3_archive import BUCKET, archive_server, shard_prefix
from causalprint.config import StrictModel
from causalprint.extraction.config import ActorConfig
from causalprint.jobs.bench_scale import measure_listing
from causalprint.jobs.spec import Section
from causalprint.runtime.job_config import JobConfig
from causalprint.runtime.local_cluster import start_cluster
from causalprint.scan.config import ScanConfig, ScanJobConfig, ScanOptions
from causalprint.scan.job import run_scan
from causalprint.storage import Storage
from causalprint.storage.sources import SourceConfig, open_source

SLOT = "scan_slot"  # a resource each worker node offers once: one scan actor per node


class NodesConfig(StrictModel):
    """The sweep: how many worker nodes, of how many CPUs, and how many images each measurement scans."""

    worker_nodes: tuple[int, ...] = Field(min_length=1, description="worker node counts, one measurement each")
    cpus_per_node: float = Field(default=1.0, gt=0, description="CPUs of each worker node; one scan actor each")
    images: int = Field(ge=1, description="images per measurement (one shard of the archive)")
    output: str = Field(default="scans/nodes", description="report folder; each count writes nodes-<n>/ (emptied)")

    @model_validator(mode="after")
    def _positive(self) -> NodesConfig:
        if any(n < 1 for n in self.worker_nodes):
            raise ValueError(f"worker_nodes must be >= 1 each, got {self.worker_nodes}")
        return self


class ProjectionConfig(StrictModel):
    """The per-GPU rate the projection starts from: a figure measured by ``causalprint bench device``."""

    per_gpu_images_per_second: float = Field(gt=0, description="the whole attribution path on one GPU")
    measured: str = Field(min_length=1, description="where that figure was measured (device, precision, batch)")
    gpu_nodes: tuple[int, ...] = Field(default=(1, 8, 64), min_length=1, description="node counts to project to")


class NodesJobConfig(JobConfig):
    nodes: NodesConfig
    projection: ProjectionConfig
    scan: ScanOptions


CONFIG = NodesJobConfig


class NodesResult(TypedDict):
    cores: int
    listing: dict[str, Any]
    runs: list[dict[str, Any]]
    projection: list[dict[str, float]]
    efficiency: float | None


def _scan_on_cluster(config: NodesJobConfig, source: SourceConfig, shard: str, nodes: int) -> dict[str, Any]:
    """One measurement: a fresh cluster of ``nodes`` worker nodes, joined as the driver, scanning ``shard``."""
    import ray

    cfg = config.nodes
    storage = Storage(config.storage)
    output = f"{cfg.output}/nodes-{nodes}"
    storage.delete_prefix(output)
    # One actor per node (each node offers one SLOT), on half the node's CPUs: the read and decode tasks that
    # feed it take the other half.
    actors = ActorConfig(min_actors=nodes, max_actors=nodes, num_cpus=cfg.cpus_per_node / 2, resources={SLOT: 1})
    options = {**config.scan.model_dump(), "actors": actors.model_dump(), "source": shard, "output": output}
    started = time.perf_counter()
    cluster = start_cluster(nodes, head_cpus=0, cpus_per_worker=cfg.cpus_per_node, worker_resources={SLOT: 1})
    try:
        up_s = time.perf_counter() - started
        job = ScanJobConfig(
            **{**config.shared(), "ray": config.ray.model_copy(update={"address": cluster.address})},
            scan=ScanConfig(**options),
            sources=(source,),
        )
        summary = run_scan(job)
        alive = len(cluster.alive_nodes()) - 1  # worker nodes still up at the end (the head has no CPU)
    finally:
        ray.shutdown()
        cluster.shutdown()
    run = summary["run"]
    return {
        "worker_nodes": nodes,
        "cpus": nodes * cfg.cpus_per_node,
        "alive_worker_nodes": alive,
        "cluster_start_seconds": round(up_s, 1),
        "images": run["written"],
        "errors": summary["errors"],
        "seconds": run["seconds"],
        "images_per_second": run["images_per_second"],
        "steady_images_per_second": run["steady_images_per_second"],
        "first_part_seconds": run["first_part_seconds"],
    }


def _efficiency(runs: list[dict[str, Any]]) -> float | None:
    """Throughput per node at the largest count that still has a core per CPU asked, over the one-node figure."""
    cores = os.cpu_count() or 1
    fitting = [r for r in runs if r["cpus"] <= cores]
    one = next((r for r in runs if r["worker_nodes"] == 1), None)
    if one is None or len(fitting) < 2:
        return None
    top = max(fitting, key=lambda r: r["worker_nodes"])
    return round(top["steady_images_per_second"] / (top["worker_nodes"] * one["steady_images_per_second"]), 3)


def run(config: NodesJobConfig) -> NodesResult:
    import ray

    if ray.is_initialized():  # each measurement joins a cluster of its own
        ray.shutdown()
    cfg = config.nodes
    storage = Storage(config.storage)
    shards = len(cfg.worker_nodes)
    with archive_server(cfg.images * shards, cfg.images, indexed=True, probe=False) as server:
        source = server.source("nodes-archive")
        opened = open_source(storage, (source,), source.uri)
        listing = measure_listing(opened.storage, opened.uri, config.scan.list_page_size)
        runs = [
            _scan_on_cluster(config, source, f"s3://{BUCKET}/{shard_prefix(i)}", nodes)
            for i, nodes in enumerate(cfg.worker_nodes)
        ]
    efficiency = _efficiency(runs)
    per_gpu = config.projection.per_gpu_images_per_second
    projection = [
        {
            "gpu_nodes": n,
            "images_per_second": round(n * per_gpu * (efficiency or 1.0), 1),
            "listing_bound": listing["objects_per_second"],
        }
        for n in config.projection.gpu_nodes
    ]
    return {
        "cores": os.cpu_count() or 1,
        "listing": listing,
        "runs": runs,
        "projection": projection,
        "efficiency": efficiency,
    }


def describe(result: NodesResult) -> str:
    lines = [
        f"{r['worker_nodes']} worker node(s): {r['images']} images in {r['seconds']} s = {r['images_per_second']} "
        f"images/s ({r['steady_images_per_second']} after the first part)"
        for r in result["runs"]
    ]
    lines.append(
        f"per-node efficiency: {result['efficiency']}; one lister: {result['listing']['objects_per_second']}/s"
    )
    return "\n".join(lines)


def format_nodes(result: NodesResult, config: NodesJobConfig) -> str:
    cfg, proj = config.nodes, config.projection
    one = next((r for r in result["runs"] if r["worker_nodes"] == 1), None)
    lines = [
        f"Each row: a fresh local cluster (`ray.cluster_utils.Cluster`: a head with no CPU for work and the worker "
        f"nodes, each {cfg.cpus_per_node:g} CPU with one scan actor) on this machine's {result['cores']} cores, "
        f"joined by the driver, scanning {cfg.images} tiny PNGs from the local S3 server (one shard each, so no "
        "run resumes another).",
        "",
        "| worker nodes | CPUs asked | images | errors | seconds | images/s | images/s after the first part | "
        "speed-up (after the first part) | cluster start (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        speedup = (
            f"{r['steady_images_per_second'] / one['steady_images_per_second']:.2f}x"
            if one and one["steady_images_per_second"]
            else "n/a"
        )
        lines.append(
            f"| {r['worker_nodes']} | {r['cpus']:g} | {r['images']} | {r['errors']} | {r['seconds']} | "
            f"{r['images_per_second']} | {r['steady_images_per_second']} | {speedup} | {r['cluster_start_seconds']} |"
        )
    efficiency = result["efficiency"]
    listing = result["listing"]
    lines += [
        "",
        f"Per-node efficiency (throughput per node at the largest count with a core for each CPU asked, over one "
        f"node's): **{efficiency if efficiency is not None else 'not measured (needs two counts that fit the cores)'}"
        "**. Counts that ask for more CPUs than the machine has share its cores: their figure shows the ceiling of "
        "this machine, not of the code. The driver, the S3 server and Ray's own processes run on the same cores as "
        "the worker nodes, so the efficiency here is a lower bound for nodes that are machines of their own.",
        "",
        f"**Projection to GPU nodes**, from {proj.per_gpu_images_per_second:g} images/s per GPU ({proj.measured}):",
        "",
        "| GPU nodes | projected images/s | one lister's listing rate (objects/s) |",
        "|---:|---:|---:|",
    ]
    for p in result["projection"]:
        flag = " (above it: split the archive)" if p["images_per_second"] > p["listing_bound"] else ""
        lines.append(f"| {p['gpu_nodes']} | {p['images_per_second']:,.0f} | {p['listing_bound']:,}{flag} |")
    lines += [
        "",
        "Assumptions: one GPU per node with one scan actor; the per-node efficiency measured here holds at N nodes "
        "(it was measured on CPU nodes, where the model, not the network, bounds each node); the images are the "
        "size the per-GPU figure was measured on (the bench's 32 px); the object store serves the GETs at that rate "
        "(one GET per image, no HEAD); the driver lists one prefix as one stream "
        f"({listing['objects_per_second']:,} objects/s measured here against the local server), so a rate above "
        "it needs the archive split into prefixes scanned by separate jobs, and a real S3 lists at its own rate. "
        "None of the GPU rows was run: they are arithmetic on the measured figures.",
    ]
    return "\n".join(lines)


def section(config: NodesJobConfig, result: NodesResult, preset: str, docs_dir: Path) -> Section:
    return Section(f"nodes-{preset}", "Scaling: scan throughput against worker nodes", format_nodes(result, config))
