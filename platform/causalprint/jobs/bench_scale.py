"""``causalprint bench scale``: a synthetic archive of many tiny objects on a local S3 server, listed through the
storage layer with the driver's memory measured, and one shard of it scanned end to end by ``causalprint scan``.

The server (:mod:`causalprint.benchmarks.s3_archive`) runs in a child process, so the driver's resident memory is
the driver's alone. The scan reads shard ``000`` (``scale.shard_size`` objects) as a read-only ``sources`` entry
and writes its report under ``scale.output`` in the storage root (emptied first), with the attributor and the
reference model of ``scan`` (the bench preset's: ``causalprint run --preset tiny`` in the same storage root).
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, TypedDict

from pydantic import Field

from causalprint.benchmarks.s3_archive import BUCKET, archive_server, shard_prefix
from causalprint.config import StrictModel
from causalprint.jobs.spec import Section
from causalprint.runtime.job_config import JobConfig
from causalprint.scan.config import ScanConfig, ScanJobConfig, ScanOptions
from causalprint.scan.job import run_scan
from causalprint.storage import SourcePages, Storage
from causalprint.storage.sources import open_source

MB = 2**20


class ScaleConfig(StrictModel):
    """The synthetic archive and what is measured on it."""

    objects: int = Field(ge=1, le=10_000_000, description="objects in the archive (tiny 16x16 PNGs)")
    shard_size: int = Field(ge=1, description="objects per shard prefix; the scan reads shard 000")
    indexed_listing: bool = Field(
        default=True,
        description="the server answers flat listings from a sorted key index (one bisection per page, as S3 "
        "pages) instead of moto's own listing, which sorts the whole bucket on every request",
    )
    probe_moto_listing: bool = Field(
        default=True, description="time moto's own listing of the full bucket (two pages) before serving"
    )
    output: str = Field(default="scans/scale", description="the scan's report folder in storage (emptied first)")


class ScaleJobConfig(JobConfig):
    scale: ScaleConfig
    scan: ScanOptions


CONFIG = ScaleJobConfig


class ScaleResult(TypedDict):
    archive: dict[str, Any]  # the server's filling: objects, seconds, its RSS, moto's own page times
    listing: dict[str, Any]  # the whole archive, listed through SourcePages
    shard_listing: dict[str, Any]  # the scan's shard, listed under tracemalloc
    scan: dict[str, Any]  # the scan of the shard
    load_average: list[float]


class RssPeak:
    """The peak resident memory of this process (the driver, not its Ray workers), sampled in a thread."""

    def __init__(self, interval_s: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process()
        self.interval_s = interval_s
        self.before = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    def figures(self) -> dict[str, float]:
        return {
            "rss_before_mb": round(self.before / MB, 1),
            "rss_peak_mb": round(self.peak / MB, 1),
            "rss_growth_mb": round((self.peak - self.before) / MB, 1),
        }


def measure_listing(storage: Storage, uri: str, page_size: int, *, traced: bool = False) -> dict[str, Any]:
    """List ``uri`` page by page, holding nothing: objects, pages, seconds, the driver's RSS and, with ``traced``,
    the peak of the memory Python allocated meanwhile (tracemalloc: slower, exact)."""
    if traced:
        tracemalloc.start()
    objects = pages = largest = 0
    try:
        with RssPeak() as rss:
            start = time.perf_counter()
            for page in SourcePages(storage, uri, page_size=page_size):
                objects, pages, largest = objects + len(page), pages + 1, max(largest, len(page))
            seconds = time.perf_counter() - start
        traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
    finally:
        if traced:
            tracemalloc.stop()
    return {
        "objects": objects,
        "pages": pages,
        "largest_page": largest,
        "seconds": round(seconds, 1),
        "objects_per_second": round(objects / max(seconds, 1e-9)),
        **rss.figures(),
        **({"traced_peak_mb": round(traced_peak / MB, 2)} if traced_peak is not None else {}),
    }


def run(config: ScaleJobConfig) -> ScaleResult:
    cfg = config.scale
    storage = Storage(config.storage)
    with archive_server(
        cfg.objects, cfg.shard_size, indexed=cfg.indexed_listing, probe=cfg.probe_moto_listing
    ) as server:
        source = server.source("scale-archive")
        opened = open_source(storage, (source,), source.uri)
        page_size = config.scan.list_page_size
        listing = measure_listing(opened.storage, opened.uri, page_size)
        shard = f"s3://{BUCKET}/{shard_prefix(0)}"
        shard_listing = measure_listing(opened.storage, shard, page_size, traced=True)
        storage.delete_prefix(cfg.output)
        job = ScanJobConfig(
            **config.shared(),
            scan=ScanConfig(**{**config.scan.model_dump(), "source": shard, "output": cfg.output}),
            sources=(source,),
        )
        with RssPeak() as rss:
            summary = run_scan(job)
    run_figures = summary["run"]
    scan = {
        "source": shard,
        "report": summary["report"],
        "images": run_figures["written"],
        "errors": summary["errors"],
        "seconds": run_figures["seconds"],
        "images_per_second": run_figures["images_per_second"],
        "first_part_seconds": run_figures["first_part_seconds"],
        "steady_images_per_second": run_figures["steady_images_per_second"],
        "largest_chunk": run_figures["largest_chunk"],
        "chunk_size": config.scan.chunk_size,
        "batch_size": config.scan.batch_size,
        "max_actors": config.scan.actors.max_actors,
        "model": summary["model_version"],
        **rss.figures(),
    }
    return {
        "archive": server.details,
        "listing": listing,
        "shard_listing": shard_listing,
        "scan": scan,
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


def describe(result: ScaleResult) -> str:
    archive, listing, shard, scan = result["archive"], result["listing"], result["shard_listing"], result["scan"]
    lines = [
        f"archive: {archive['objects']} objects put in {archive['populate_seconds']} s "
        f"({archive['objects_per_second']}/s); server RSS {archive['server_rss_mb']} MB",
        f"listing: {listing['objects']} objects in {listing['pages']} pages, {listing['seconds']} s "
        f"({listing['objects_per_second']}/s); driver RSS {listing['rss_before_mb']} -> peak {listing['rss_peak_mb']} "
        f"MB (+{listing['rss_growth_mb']})",
        f"shard listing: {shard['objects']} objects, Python's peak allocation {shard['traced_peak_mb']} MB",
        f"scan: {scan['images']} images ({scan['errors']} errors) in {scan['seconds']} s = "
        f"{scan['images_per_second']} images/s ({scan['steady_images_per_second']} after the first part); "
        f"largest chunk {scan['largest_chunk']}; driver RSS peak {scan['rss_peak_mb']} MB (+{scan['rss_growth_mb']})",
    ]
    if "moto_listing" in archive:
        moto = archive["moto_listing"]
        lines.append(
            f"moto's own listing: {moto['first_page_seconds']} s for the first page of 1000, "
            f"{moto['next_page_seconds']} s for the next"
        )
    return "\n".join(lines)


def format_scale(result: ScaleResult, config: ScaleJobConfig) -> str:
    archive, listing, shard, scan = result["archive"], result["listing"], result["shard_listing"], result["scan"]
    moto = archive.get("moto_listing")
    pages = listing["pages"]
    lines = [
        "| measure | value |",
        "|---|---:|",
        f"| objects in the archive (16x16 PNGs, {config.scale.shard_size} per shard prefix) | {archive['objects']} |",
        f"| filling the server (in its process, no requests) | {archive['populate_seconds']} s |",
        f"| server's RSS once filled (moto, its own process) | {archive['server_rss_mb']} MB |",
        f"| listing every object through `SourcePages` ({config.scan.list_page_size} keys per request) | "
        f"{listing['objects']} objects, {pages} pages, {listing['seconds']} s = {listing['objects_per_second']}/s |",
        f"| driver's RSS during that listing: before, peak, growth | {listing['rss_before_mb']} MB, "
        f"{listing['rss_peak_mb']} MB, +{listing['rss_growth_mb']} MB |",
        f"| Python's peak allocation listing one shard ({shard['objects']} objects, tracemalloc) | "
        f"{shard['traced_peak_mb']} MB |",
        f"| scan of shard 000 (`causalprint scan`, end to end) | {scan['images']} images, {scan['errors']} errors |",
        f"| scan wall time, images/s (after the first part) | {scan['seconds']} s, {scan['images_per_second']} "
        f"({scan['steady_images_per_second']}) |",
        f"| scan chunks: chunk size, largest held | {scan['chunk_size']}, {scan['largest_chunk']} |",
        f"| driver's RSS during the scan: peak, growth | {scan['rss_peak_mb']} MB, +{scan['rss_growth_mb']} MB |",
    ]
    if moto:
        lines.append(
            f"| moto's own `list_objects_v2` on the full bucket: first page, next page | {moto['first_page_seconds']} "
            f"s, {moto['next_page_seconds']} s |"
        )
    lines += [
        "",
        f"Model `{scan['model']}`, batch size {scan['batch_size']}, at most {scan['max_actors']} actors. Load average "
        f"of the machine at the end: {', '.join(map(str, result['load_average']))} (other jobs shared its cores). "
        "The driver holds one page of the listing, then one chunk of files to scan: its RSS grows by the page, "
        "not by the archive. "
        + (
            "The server answered the listing from a sorted index of the keys (one bisection per page, as S3 pages); "
            "moto's own listing sorts the whole bucket on every request, so a flat listing of the archive through "
            f"it would cost about {pages} x {moto['next_page_seconds']} s."
            if moto and archive.get("indexed")
            else ""
        ),
    ]
    return "\n".join(lines)


def section(config: ScaleJobConfig, result: ScaleResult, preset: str, docs_dir: Path) -> Section:
    return Section(
        f"scale-{preset}",
        f"Scale: listing {result['listing']['objects']:,} objects on the local S3 server, scanning "
        f"{result['scan']['images']:,}",
        format_scale(result, config),
    )
