"""Throughput of the residual and feature engine, all measured in one run on the same images.

1. the machine's dense-matmul FLOP rate (fp32 square matmul, all cores);
2. per residual mode: images per second in a plain batched loop, FLOPs per image (PyTorch's FLOP counter,
   convolutions and matmuls), and the achieved FLOP rate;
3. the Ray Data pipeline against a plain single-process loop that runs the *same* stage code (decode,
   residual, features, Parquet write) one batch after another; both include model loading;
4. peak resident memory of each (driver plus Ray workers).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from pydantic import Field
from torch.utils.flop_counter import FlopCounterMode

from causalprint.benchmarks.memory import PeakMemory
from causalprint.config import StrictModel
from causalprint.data.collection import decode_rows
from causalprint.data.parts import write_batch_part
from causalprint.extraction.actors import (
    FeatureActor,
    ResidualActor,
    image_seeds,
    load_reference,
    to_model_input,
)
from causalprint.extraction.config import ExtractConfig, ExtractJobConfig, SpaceSpec
from causalprint.extraction.pipeline import run_extract
from causalprint.imaging.intake import IntakeConfig
from causalprint.residual.registry import create_mode
from causalprint.runtime.job_config import JobConfig
from causalprint.runtime.ray_local import ensure_ray
from causalprint.storage import Storage
from causalprint.zoo.manifest import read_manifest

log = logging.getLogger(__name__)


def _default_modes() -> dict[str, dict[str, Any]]:
    return {"dire": {"steps": 20}, "one_step": {}, "latent": {}}


def _default_pipeline_modes() -> dict[str, dict[str, Any]]:
    return {"one_step": {}}


class ThroughputConfig(StrictModel):
    input: str = "zoo/bench/manifest.parquet"
    reference: str = "models/reference/bench"
    split: str = "heldout"
    images: int = Field(default=1024, ge=8, description="images for the per-mode timings")
    pipeline_images: int = Field(default=2048, ge=8, description="images for the Ray-vs-loop comparison")
    batch_size: int = Field(default=64, ge=1)
    modes: dict[str, dict[str, Any]] = Field(default_factory=_default_modes)
    pipeline_modes: dict[str, dict[str, Any]] = Field(default_factory=_default_pipeline_modes)
    pipeline_spaces: list[SpaceSpec] = Field(
        default_factory=lambda: [SpaceSpec(name=n) for n in ("rgb", "dct", "fourier", "sl")]
    )
    matmul_size: int = Field(default=2048, ge=128)


class BenchExtractJobConfig(JobConfig):
    bench: ThroughputConfig = ThroughputConfig()


def matmul_gflops(size: int, repeats: int = 10) -> float:
    """Best-of-``repeats`` fp32 dense matmul rate in GFLOP/s (2 n^3 FLOPs per product)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def balanced_uris(manifest: pa.Table, split: str, n: int) -> list[str]:
    """``n`` URIs of one split, taken round-robin across sources so every class is represented."""
    rows = manifest.filter(pa.compute.equal(manifest["split"], split)).to_pylist()
    by_source: dict[str, list[str]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row["uri"])
    out: list[str] = []
    queues = [iter(v) for _, v in sorted(by_source.items())]
    while len(out) < n and queues:
        for q in list(queues):
            uri = next(q, None)
            if uri is None:
                queues.remove(q)
            elif len(out) < n:
                out.append(uri)
    return out


def time_mode(name: str, options: dict[str, Any], reference, images: np.ndarray, batch_size: int) -> dict[str, Any]:
    """Images/s and achieved FLOP rate of one residual mode over ``images`` (uint8 NHWC), in a plain loop."""
    mode = create_mode(name, reference, **options)
    first = images[:batch_size]
    with FlopCounterMode(display=False) as counter:
        mode(to_model_input(first, reference.device), image_seeds(first))
    flops_per_image = counter.get_total_flops() / len(first)
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size]
        mode(to_model_input(chunk, reference.device), image_seeds(chunk))
    seconds = time.perf_counter() - start
    return {
        "mode": name,
        "options": options,
        "denoiser_passes": mode.denoiser_passes,
        "images": len(images),
        "seconds": seconds,
        "images_per_second": len(images) / seconds,
        "gflop_per_image": flops_per_image / 1e9,
        "achieved_gflops": flops_per_image * len(images) / seconds / 1e9,
    }


def plain_loop(storage: Storage, uris: list[str], cfg: ThroughputConfig, intake: IntakeConfig, output: str) -> float:
    """The extraction stages in one process, batch after batch; returns seconds (model loading included)."""
    start = time.perf_counter()
    residual = ResidualActor(storage, cfg.reference, cfg.pipeline_modes, "auto")
    features = FeatureActor(storage, cfg.pipeline_spaces, intake.size)
    for i in range(0, len(uris), cfg.batch_size):
        batch = decode_rows({"uri": np.array(uris[i : i + cfg.batch_size], dtype=object)}, storage, intake)
        write_batch_part(features(residual(batch)), storage, output)
    return time.perf_counter() - start


def run_throughput(job: BenchExtractJobConfig) -> dict[str, Any]:
    """Measure everything in one run and return the figures."""
    ensure_ray(job.ray)
    storage = Storage(job.storage)
    cfg = job.bench
    reference = load_reference(storage, cfg.reference)
    intake = IntakeConfig(size=reference.image_size)
    manifest = read_manifest(storage, storage.resolve(cfg.input))
    uris = balanced_uris(manifest, cfg.split, max(cfg.images, cfg.pipeline_images))
    decoded = decode_rows({"uri": np.array(uris[: cfg.images], dtype=object)}, storage, intake)
    images = decoded["image"][decoded["ok"]]

    result: dict[str, Any] = {"threads": torch.get_num_threads(), "reference_id": reference.identity.id}
    result["matmul_gflops"] = matmul_gflops(cfg.matmul_size)
    log.info("dense matmul: %.1f GFLOP/s", result["matmul_gflops"])
    result["modes"] = []
    for name, options in cfg.modes.items():
        timing = time_mode(name, options, reference, images, cfg.batch_size)
        timing["fraction_of_matmul"] = timing["achieved_gflops"] / result["matmul_gflops"]
        log.info(
            "%s: %.1f img/s, %.1f GFLOP/s (%.2f of matmul)",
            name,
            timing["images_per_second"],
            timing["achieved_gflops"],
            timing["fraction_of_matmul"],
        )
        result["modes"].append(timing)

    pipe_uris = uris[: cfg.pipeline_images]
    scratch = f"bench/throughput-{uuid.uuid4().hex[:8]}"
    try:
        with PeakMemory() as loop_mem:
            loop_s = plain_loop(storage, pipe_uris, cfg, intake, f"{scratch}/loop")
        storage.write_parquet(
            storage.uri(scratch, "inputs.parquet"),
            manifest.filter(pa.compute.is_in(manifest["uri"], pa.array(pipe_uris))),
        )
        extract = ExtractJobConfig(
            storage=job.storage,
            ray=job.ray,
            intake=intake,
            extract=ExtractConfig(
                input=f"{scratch}/inputs.parquet",
                output=f"{scratch}/ray",
                reference=cfg.reference,
                modes=cfg.pipeline_modes,
                spaces=cfg.pipeline_spaces,
                batch_size=cfg.batch_size,
            ),
        )
        with PeakMemory() as ray_mem:
            start = time.perf_counter()
            summary = run_extract(extract)
            ray_s = time.perf_counter() - start
    finally:
        storage.delete_prefix(storage.uri(scratch))
    result["pipeline"] = {
        "images": len(pipe_uris),
        "modes": list(cfg.pipeline_modes),
        "spaces": [s.name for s in cfg.pipeline_spaces],
        "loop_images_per_second": len(pipe_uris) / loop_s,
        "ray_images_per_second": summary["written"] / ray_s,
        "loop_peak_rss_gib": loop_mem.peak_bytes / 2**30,
        "ray_peak_rss_gib": ray_mem.peak_bytes / 2**30,
    }
    p = result["pipeline"]
    p["ray_over_loop"] = p["ray_images_per_second"] / p["loop_images_per_second"]
    log.info(
        "pipeline: loop %.1f img/s, Ray %.1f img/s (%.2fx)",
        p["loop_images_per_second"],
        p["ray_images_per_second"],
        p["ray_over_loop"],
    )
    by_mode = {m["mode"]: m for m in result["modes"]}
    if "dire" in by_mode and "one_step" in by_mode:
        result["one_step_speedup_over_dire"] = (
            by_mode["one_step"]["images_per_second"] / by_mode["dire"]["images_per_second"]
        )
    return result


def format_throughput(result: dict[str, Any]) -> str:
    """Markdown tables of a throughput result."""
    lines = [
        f"Dense fp32 matmul on this machine: **{result['matmul_gflops']:.1f} GFLOP/s** "
        f"({result['threads']} threads). Reference model `{result['reference_id']}`.",
        "",
        "| residual mode | denoiser passes | images/s | GFLOP/image | achieved GFLOP/s | fraction of matmul rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in result["modes"]:
        label = m["mode"] + (f" ({', '.join(f'{k}={v}' for k, v in m['options'].items())})" if m["options"] else "")
        lines.append(
            f"| {label} | {m['denoiser_passes']} | {m['images_per_second']:.1f} | "
            f"{m['gflop_per_image']:.3f} | {m['achieved_gflops']:.1f} | {m['fraction_of_matmul']:.2f} |"
        )
    if "one_step_speedup_over_dire" in result:
        lines += ["", f"one_step is **{result['one_step_speedup_over_dire']:.1f}x** faster per image than dire."]
    p = result["pipeline"]
    lines += [
        "",
        f"Pipeline ({p['images']} images; residual {', '.join(p['modes'])}; spaces {', '.join(p['spaces'])}; "
        "decode, residual, features and Parquet write; model loading included):",
        "",
        "| runner | images/s | peak RSS (GiB, driver + workers) |",
        "|---|---:|---:|",
        f"| plain single-process loop | {p['loop_images_per_second']:.1f} | {p['loop_peak_rss_gib']:.2f} |",
        f"| Ray Data pipeline | {p['ray_images_per_second']:.1f} | {p['ray_peak_rss_gib']:.2f} |",
        "",
        f"Ray pipeline / plain loop: **{p['ray_over_loop']:.2f}x**.",
    ]
    return "\n".join(lines)
