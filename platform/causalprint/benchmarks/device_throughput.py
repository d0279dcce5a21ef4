"""The attribution path on each device of one machine, in one process (no Ray): CPU against CUDA.

``prepare_kit`` writes what the benchmark reads into one storage prefix, so that it can travel to a machine with
no registry and no zoo: the attributor's files (JSON + safetensors), its reference model and a class-balanced
sample of held-out images. ``run_device_bench`` then measures, on each device it names (a device this process
cannot see is reported as absent, not skipped silently):

1. each residual mode through the extraction's own :class:`ResidualActor` (batched, results back on the host),
   in each precision (``auto`` is bf16 autocast on CUDA and float32 on the CPU);
2. the whole scan path, :class:`ImageAttributor` (residual, features, attributor), in images per second per
   batch size, and one-image latency, which is what a Serve replica does per request;
3. the decoupling model's training epoch (:func:`fit_decoupler`'s loop, the one Ray Train workers run) on rows
   of the attributor's own input width;
4. how often each device's decisions equal the CPU's float32 decisions on the same images (the precision the
   attributor was trained in).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from pydantic import Field

from causalprint.attribution.model import CausalDecoupler, train_epoch
from causalprint.benchmarks.extract_throughput import balanced_uris
from causalprint.config import StrictModel
from causalprint.data.collection import IMAGE_SUFFIXES, decode_rows
from causalprint.extraction.actors import ResidualActor, autocast_dtype
from causalprint.imaging.intake import IntakeConfig
from causalprint.runtime.job_config import JobConfig
from causalprint.scan.image_attributor import ImageAttributor
from causalprint.storage import Storage
from causalprint.storage.folders import download_folder, upload_folder
from causalprint.tracking.artifacts import REQUIREMENTS_NAME, LoadedAttributor
from causalprint.tracking.mlflow_setup import tracking_uri_for
from causalprint.tracking.versions import load_attributor, pin_model_uri
from causalprint.zoo.manifest import read_manifest

log = logging.getLogger(__name__)

ATTRIBUTOR_DIR, REFERENCE_DIR, IMAGES_DIR = "attributor", "reference", "images"


class DeviceKitConfig(StrictModel):
    """What ``causalprint bench device-kit`` copies into ``output``."""

    model: str = "models:/causalprint-attributor@champion"
    reference: str = "models/reference/bench"
    manifest: str = "zoo/bench/manifest.parquet"
    split: str = "heldout"
    images: int = Field(default=2048, ge=1, description="taken round-robin over the attributor's classes")
    output: str = "bench/device"


class DeviceBenchConfig(StrictModel):
    """What ``causalprint bench device`` measures, on a kit written by ``prepare_kit``."""

    kit: str = "bench/device"
    devices: list[str] = Field(default_factory=lambda: ["cpu", "cuda"], min_length=1)
    images: int = Field(default=2048, ge=1, description="images per accelerator measurement")
    cpu_images: int = Field(default=256, ge=1, description="images per CPU measurement (and for agreement)")
    batch_sizes: list[int] = Field(default_factory=lambda: [64, 512], min_length=1)
    modes: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"dire": {"steps": 20}, "one_step": {"t": 200}, "latent": {}}
    )
    precisions: list[str] = Field(default_factory=lambda: ["float32", "auto"], min_length=1)
    single_requests: int = Field(default=100, ge=1, description="one-image calls timed for latency")
    train_rows: int = Field(default=65536, ge=64, description="training rows on an accelerator")
    cpu_train_rows: int = Field(default=8192, ge=64, description="training rows on the CPU")
    train_epochs: int = Field(default=3, ge=1)
    train_batch_size: int = Field(default=256, ge=1)


class BenchDeviceJobConfig(JobConfig):
    kit: DeviceKitConfig = DeviceKitConfig()
    bench: DeviceBenchConfig = DeviceBenchConfig()


def prepare_kit(job: BenchDeviceJobConfig) -> dict[str, Any]:
    """Write the attributor, its reference model and balanced held-out images under ``kit.output``."""
    storage, cfg = Storage(job.storage), job.kit
    tracking_uri = tracking_uri_for(job.mlflow, storage)
    model = pin_model_uri(cfg.model, tracking_uri)  # the kit names the version it holds, not a moving alias
    with tempfile.TemporaryDirectory() as tmp:
        attributor = load_attributor(model, dst=tmp, tracking_uri=tracking_uri)
        storage.delete_prefix(storage.uri(cfg.output))  # a kit is one model's: never mix two
        # MLflow downloads into a folder named after the artifact path: copy the folder the model came from.
        folder = next(Path(tmp).rglob(REQUIREMENTS_NAME)).parent
        upload_folder(storage, folder, f"{cfg.output}/{ATTRIBUTOR_DIR}")
    with tempfile.TemporaryDirectory() as tmp:
        upload_folder(storage, download_folder(storage, cfg.reference, tmp), f"{cfg.output}/{REFERENCE_DIR}")
    manifest = read_manifest(storage, storage.resolve(cfg.manifest))
    classes = set(attributor.calibration.class_names)
    manifest = manifest.filter(pc.is_in(manifest["source"], pa.array(sorted(classes))))
    uris = balanced_uris(manifest, cfg.split, cfg.images)
    for i, uri in enumerate(uris):  # numbered: two sources' files may share a name
        suffix = "." + uri.rsplit(".", 1)[-1] if "." in uri.rsplit("/", 1)[-1] else ""
        storage.write_bytes(storage.uri(cfg.output, IMAGES_DIR, f"{i:06d}{suffix}"), storage.read_bytes(uri))
    storage.write_json(
        storage.uri(cfg.output, "kit.json"),
        {"model": model, "images": len(uris), "classes": sorted(classes), "split": cfg.split},
    )
    return {"output": storage.resolve(cfg.output), "model": model, "images": len(uris)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn, *args) -> tuple[Any, float]:
    _sync(device)
    start = time.perf_counter()
    out = fn(*args)
    _sync(device)
    return out, time.perf_counter() - start


def _batches(images: np.ndarray, size: int):
    for i in range(0, len(images), size):
        yield {"ok": np.ones(len(images[i : i + size]), dtype=bool), "image": images[i : i + size]}


def time_residuals(
    storage: Storage,
    reference: str,
    images: np.ndarray,
    device: torch.device,
    modes: dict[str, dict[str, Any]],
    precision: str,
    batch_size: int,
) -> list[dict[str, Any]]:
    """Images per second of each residual mode, through the extraction's own actor."""
    rows = []
    for name, options in modes.items():
        actor = ResidualActor(storage, reference, {name: options}, precision, device)
        actor(next(_batches(images, batch_size)))  # warm-up: kernels, allocator, autocast caches
        seconds = sum(_timed(device, actor, batch)[1] for batch in _batches(images, batch_size))
        rows.append(
            {
                "mode": name,
                "options": options,
                "precision": precision,
                "batch_size": batch_size,
                "images": len(images),
                "images_per_second": len(images) / seconds,
            }
        )
        log.info("%s %s %s batch %d: %.1f img/s", device, name, precision, batch_size, rows[-1]["images_per_second"])
    return rows


def time_pipeline(
    pipeline: ImageAttributor, images: np.ndarray, device: torch.device, batch_size: int, single_requests: int
) -> dict[str, Any]:
    """Images per second of the whole attribution path per batch, and one-image latency (ms)."""
    pipeline(next(_batches(images, batch_size)))
    seconds = sum(_timed(device, pipeline, batch)[1] for batch in _batches(images, batch_size))
    latencies = []
    for i in range(min(single_requests, len(images))):
        latencies.append(_timed(device, pipeline.attribute_images, images[i : i + 1])[1] * 1e3)
    latencies.sort()
    return {
        "batch_size": batch_size,
        "images": len(images),
        "images_per_second": len(images) / seconds,
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }


def time_training(
    attributor: LoadedAttributor, device: torch.device, rows: int, epochs: int, batch_size: int
) -> dict[str, Any]:
    """Seconds per epoch of :func:`train_epoch` (the loop Ray Train workers run) for the attributor's
    architecture, on random rows of its input width; the input statistics are fitted first and not timed."""
    config = attributor.model.config
    gen = np.random.default_rng(0)
    x = torch.from_numpy(gen.standard_normal((rows, config.input_dim), dtype=np.float32))
    y = torch.from_numpy(gen.integers(0, config.num_classes, rows))
    torch.manual_seed(0)
    model = CausalDecoupler(config)
    model.fit_input_statistics(x)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = x.to(device), y.to(device)
    order = torch.randperm(rows).to(device)
    _timed(device, train_epoch, model.loss, optimizer, x, y, order[: batch_size * 4], batch_size)  # warm-up
    seconds = [_timed(device, train_epoch, model.loss, optimizer, x, y, order, batch_size)[1] for _ in range(epochs)]
    per_epoch = statistics.median(seconds)
    return {
        "rows": rows,
        "input_dim": config.input_dim,
        "epochs": epochs,
        "batch_size": batch_size,
        "seconds_per_epoch": per_epoch,
        "rows_per_second": rows / per_epoch,
    }


def agreement(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of images whose decision (and architecture) equal the reference run's; largest probability gap."""
    return {
        "images": len(reference["predicted"]),
        "decisions": float(np.mean(reference["predicted"] == other["predicted"])),
        "architectures": float(np.mean(reference["architecture"] == other["architecture"])),
        "max_probability_gap": float(np.nanmax(np.abs(reference["probabilities"] - other["probabilities"]))),
    }


def _run_all(pipeline: ImageAttributor, images: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    parts = [pipeline(batch) for batch in _batches(images, batch_size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("predicted", "architecture", "probabilities")}


def load_kit_images(storage: Storage, kit: str, size: int, count: int) -> np.ndarray:
    """Decode up to ``count`` kit images with the scan's own decoder; a file that fails to decode is an error."""
    files = storage.list_files(storage.uri(kit, IMAGES_DIR), IMAGE_SUFFIXES)[:count]
    if not files:
        raise FileNotFoundError(
            f"no images under {storage.resolve(kit)}/{IMAGES_DIR}: run causalprint bench device-kit"
        )
    decoded = decode_rows({"uri": np.array([f.uri for f in files], dtype=object)}, storage, IntakeConfig(size=size))
    if not decoded["ok"].all():
        raise ValueError(f"kit images failed to decode: {list(decoded['error'][~decoded['ok']])[:3]}")
    return decoded["image"]


def run_device_bench(job: BenchDeviceJobConfig) -> dict[str, Any]:
    """Measure every device named in ``bench.devices`` on the kit; returns the figures."""
    storage, cfg = Storage(job.storage), job.bench
    with tempfile.TemporaryDirectory() as tmp:
        attributor = LoadedAttributor.from_folder(download_folder(storage, f"{cfg.kit}/{ATTRIBUTOR_DIR}", tmp))
    kit_info = storage.read_json(storage.uri(cfg.kit, "kit.json"))
    reference = f"{cfg.kit}/{REFERENCE_DIR}"
    size = int(attributor.requirements["extraction"]["image_size"])
    images = load_kit_images(storage, cfg.kit, size, max(cfg.images, cfg.cpu_images))
    result: dict[str, Any] = {"model": kit_info["model"], "devices": [], "absent": []}
    decided: list[tuple[dict[str, Any], str, bool, dict[str, np.ndarray]]] = []  # entry, precision, CPU float32?
    for name in cfg.devices:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            result["absent"].append(name)
            log.warning("device %s: not visible to this process, not measured", name)
            continue
        label = (
            torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
        )
        sample = images[: cfg.cpu_images if device.type == "cpu" else cfg.images]
        entry: dict[str, Any] = {
            "device": name,
            "label": label,
            "images": len(sample),
            "residuals": [],
            "pipeline": [],
            "agreement": {},
        }
        measured: set[torch.dtype | None] = set()
        for precision in cfg.precisions:
            dtype = autocast_dtype(precision, device)
            if dtype in measured:  # "auto" is float32 on the CPU: once is enough
                continue
            measured.add(dtype)
            for batch_size in cfg.batch_sizes:
                entry["residuals"] += time_residuals(
                    storage, reference, sample, device, cfg.modes, precision, batch_size
                )
            pipeline = ImageAttributor.from_attributor(
                storage, attributor, kit_info["model"], reference, precision=precision, device=name
            )
            for batch_size in cfg.batch_sizes:
                timing = time_pipeline(pipeline, sample, device, batch_size, cfg.single_requests)
                entry["pipeline"].append({"precision": precision, **timing})
                log.info(
                    "%s pipeline %s batch %d: %.1f img/s, p50 %.1f ms",
                    name,
                    precision,
                    batch_size,
                    timing["images_per_second"],
                    timing["latency_ms_p50"],
                )
            decisions = _run_all(pipeline, images[: cfg.cpu_images], cfg.batch_sizes[0])
            decided.append((entry, precision, device.type == "cpu" and dtype is None, decisions))
        entry["training"] = time_training(
            attributor,
            device,
            cfg.cpu_train_rows if device.type == "cpu" else cfg.train_rows,
            cfg.train_epochs,
            cfg.train_batch_size,
        )
        result["devices"].append(entry)
    # Against the CPU's full-precision decisions, whichever device or precision the config names first.
    baseline = next((decisions for _, _, cpu_float32, decisions in decided if cpu_float32), None)
    if baseline is None:
        log.warning("no CPU float32 run among %s x %s: decisions are not compared", cfg.devices, cfg.precisions)
    else:
        for entry, precision, _, decisions in decided:
            entry["agreement"][precision] = agreement(baseline, decisions)
    return result


def format_device_bench(result: dict[str, Any]) -> str:
    """Markdown tables of a device benchmark."""
    lines = [
        f"Attributor `{result['model']}`; kit images are held-out zoo images, round-robin over its classes. "
        "`auto` precision is bf16 autocast on CUDA; on the CPU it is float32, measured once."
    ]
    if result["absent"]:
        lines += ["", f"Not measured (not visible to this process): {', '.join(result['absent'])}."]
    lines += [
        "",
        "Residual modes (ResidualActor, results copied back to the host), images/s:",
        "",
        "| device | mode | precision | batch | images | images/s |",
        "|---|---|---|---:|---:|---:|",
    ]
    for d in result["devices"]:
        for r in d["residuals"]:
            opts = ", ".join(f"{k}={v}" for k, v in r["options"].items())
            lines.append(
                f"| {d['label']} | {r['mode']}{f' ({opts})' if opts else ''} | {r['precision']} | "
                f"{r['batch_size']} | {r['images']} | {r['images_per_second']:.1f} |"
            )
    lines += [
        "",
        "Whole attribution path (ImageAttributor: residual, features, attributor; the scan's and the "
        "endpoints' code), and one-image latency:",
        "",
        "| device | precision | batch | images/s | 1-image p50 (ms) | 1-image p95 (ms) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for d in result["devices"]:
        for p in d["pipeline"]:
            lines.append(
                f"| {d['label']} | {p['precision']} | {p['batch_size']} | {p['images_per_second']:.1f} | "
                f"{p['latency_ms_p50']:.1f} | {p['latency_ms_p95']:.1f} |"
            )
    lines += [
        "",
        "Decisions equal to the CPU's float32 decisions on the same images (the precision the attributor "
        "was trained in):",
        "",
        "| device | precision | images | same decision | same architecture | largest probability gap |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for d in result["devices"]:
        for precision, a in d["agreement"].items():
            lines.append(
                f"| {d['label']} | {precision} | {a['images']} | {100 * a['decisions']:.2f} % | "
                f"{100 * a['architectures']:.2f} % | {a['max_probability_gap']:.2e} |"
            )
    lines += [
        "",
        "Training epoch of the decoupling model (train_epoch, the Ray Train workers' loop; random rows of the "
        "attributor's input width; median of the timed epochs):",
        "",
        "| device | rows | input dims | batch | s/epoch | rows/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for d in result["devices"]:
        t = d["training"]
        lines.append(
            f"| {d['label']} | {t['rows']} | {t['input_dim']} | {t['batch_size']} | "
            f"{t['seconds_per_epoch']:.2f} | {t['rows_per_second']:.0f} |"
        )
    return "\n".join(lines)
