"""Build a zoo: train every generator as a parallel Ray task, sample it, and write images plus a manifest.

Layout under ``<storage root>/zoo/<name>/``::

    generators/<source>/<key>/{config.json, model.safetensors, train.json}   trained weights (train.json last)
    images/<source>/<split>/<source>_<split>_<index>.png                     every class, identically encoded
    images/<source>/_DONE.json                                               written after a source's images
    manifest.parquet                                                         written last: the zoo is complete
    zoo_report.json                                                          per-source size, time, quality

Every step is cached by a key over the config that determines it, so a rerun reuses what was trained and
sampled, and a killed build resumes with the sources that have no ``_DONE.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from pydantic import BaseModel

from causalprint.data.crops import CropConfig, random_crops
from causalprint.data.photos import load_photo_groups, photo_names
from causalprint.imaging.encode import encode_image, file_suffix, to_uint8
from causalprint.progress import ProgressLogger
from causalprint.runtime.device import pick_device
from causalprint.seeding import derive_seed
from causalprint.storage import Storage
from causalprint.storage.folders import download_folder, upload_folder
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec
from causalprint.zoo.config import REAL_SOURCE, ZooConfig
from causalprint.zoo.manifest import MANIFEST_SCHEMA, manifest_uri
from causalprint.zoo.registry import GENERATORS, create_generator

log = logging.getLogger(__name__)


def config_key(*parts: BaseModel | dict[str, Any] | int | str) -> str:
    """Short hash of everything that determines an artefact; a change of any part invalidates the cache."""
    payload = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _training_key(zoo: ZooConfig, spec: GeneratorSpec) -> str:
    # Unset ``photos``/``crops`` stay out of the key, so generators cached before those fields existed stay valid;
    # for the same reason the generator-only photo set enters only the keys of the generators trained on it.
    dumped = spec.model_dump(mode="json", exclude={k for k in ("photos", "crops") if getattr(spec, k) is None})
    parts: list[Any] = [dumped, zoo.image_size, zoo.photos, zoo.crops, zoo.train_crops_per_group, zoo.seed]
    if zoo.is_generator_only(spec.content_group):
        parts.append(zoo.photo_set(spec.content_group))
    return config_key(*parts)


def _sampling_key(zoo: ZooConfig, spec_key: str) -> str:
    return config_key(spec_key, zoo.splits, zoo.encoding)


def training_images(
    zoo: ZooConfig, group: str, photos: dict[str, list[np.ndarray]], crops: CropConfig | None = None
) -> torch.Tensor:
    """The real crops a generator of ``group`` trains on, as ``[N, 3, S, S]`` floats in [-1, 1]; ``crops``
    replaces the zoo's crop scales."""
    images = random_crops(
        photos[group],
        zoo.train_crops_per_group,
        zoo.image_size,
        derive_seed(zoo.seed, "train", group),
        crops or zoo.crops,
    )
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def generator_prefix(storage: Storage, zoo: ZooConfig, spec: GeneratorSpec) -> str:
    """Where the trained weights of ``spec`` live (complete once ``train.json`` is there)."""
    return storage.uri(zoo.prefix, "generators", spec.name, _training_key(zoo, spec))


def train_or_load(storage: Storage, zoo: ZooConfig, spec: GeneratorSpec) -> tuple[GeneratorFamily, dict]:
    """The trained generator for ``spec``, from the cache when its key matches, else trained now."""
    model_prefix = generator_prefix(storage, zoo, spec)
    cls = GENERATORS.get(spec.arch)
    if storage.exists(f"{model_prefix}/train.json"):
        with tempfile.TemporaryDirectory() as tmp:
            download_folder(storage, model_prefix, tmp)
            generator = cls.from_pretrained(tmp)
        log.info("%s: reusing trained weights at %s", spec.name, model_prefix)
        return generator, {**storage.read_json(f"{model_prefix}/train.json"), "reused_weights": True}

    photos = load_photo_groups(zoo.photo_set(spec.content_group), storage.config, within=spec.photos)
    device = pick_device()
    images = training_images(zoo, spec.content_group, photos, spec.crops).to(device)
    generator = create_generator(spec, zoo.image_size)
    progress = ProgressLogger(f"train {spec.name}", generator.total_steps(), unit="step", every_s=30)
    start = time.perf_counter()
    metrics = generator.fit(images, progress)
    info = {
        "source": spec.name,
        "arch": spec.arch,
        "family": generator.family,
        "content_group": spec.content_group,
        "parameters": generator.parameter_count(),
        "train_seconds": round(time.perf_counter() - start, 2),
        "train_steps": generator.total_steps(),
        "device": str(device),
        "metrics": metrics,
    }
    generator.eval()
    with tempfile.TemporaryDirectory() as tmp:
        generator.save_pretrained(tmp)
        upload_folder(storage, tmp, model_prefix)
    storage.write_json(f"{model_prefix}/train.json", info)  # last: marks the weights complete
    return generator, {**info, "reused_weights": False}


def write_source_images(
    storage: Storage,
    zoo: ZooConfig,
    source: str,
    images_by_split: dict[str, np.ndarray],
    meta: dict[str, Any],
    key: str,
) -> list[dict[str, Any]]:
    """Encode and write one source's images identically for every class; return its manifest rows."""
    base = storage.uri(zoo.prefix, "images", source)
    storage.delete_prefix(base)  # a changed config must not leave stale images beside the new ones
    suffix = file_suffix(zoo.encoding)
    rows = []
    for split, images in images_by_split.items():
        for index, image in enumerate(images):
            uri = f"{base}/{split}/{source}_{split}_{index:05d}{suffix}"
            storage.write_bytes(uri, encode_image(image, zoo.encoding))
            rows.append({"uri": uri, "source": source, "split": split, "index": index, **meta})
    storage.write_json(f"{base}/_DONE.json", {"key": key, "rows": rows})
    return rows


def _cached_rows(storage: Storage, zoo: ZooConfig, source: str, key: str) -> list[dict[str, Any]] | None:
    marker = storage.uri(zoo.prefix, "images", source, "_DONE.json")
    if storage.exists(marker):
        done = storage.read_json(marker)
        if done.get("key") == key:
            return done["rows"]
    return None


def build_generator_source(storage: Storage, zoo: ZooConfig, spec: GeneratorSpec) -> dict[str, Any]:
    """Train (or reuse) one generator and sample its images; returns its rows and training info."""
    _configure_worker_logging()
    key = _sampling_key(zoo, _training_key(zoo, spec))
    rows = _cached_rows(storage, zoo, spec.name, key)
    if rows is not None:
        log.info("%s: reusing %d sampled images", spec.name, len(rows))
        model_prefix = storage.uri(zoo.prefix, "generators", spec.name, _training_key(zoo, spec))
        info = {**storage.read_json(f"{model_prefix}/train.json"), "reused_weights": True}
        return {"rows": rows, "info": {**info, "reused_samples": True}}
    generator, info = train_or_load(storage, zoo, spec)
    total = sum(zoo.splits.values())
    start = time.perf_counter()
    samples = to_uint8(generator.sample(total, seed=derive_seed(spec.seed, spec.name, "sample")))
    info = {**info, "sample_seconds": round(time.perf_counter() - start, 2), "reused_samples": False}
    log.info(
        "%s: sampled %d images in %.1fs (%.1f img/s)",
        spec.name,
        total,
        info["sample_seconds"],
        total / max(info["sample_seconds"], 1e-9),
    )
    by_split, offset = {}, 0
    for split, n in zoo.splits.items():
        by_split[split] = samples[offset : offset + n]
        offset += n
    meta = {"arch": spec.arch, "family": info["family"], "content_group": spec.content_group, "seed": spec.seed}
    rows = write_source_images(storage, zoo, spec.name, by_split, meta, key)
    return {"rows": rows, "info": info}


def real_key(zoo: ZooConfig) -> str:
    """The real class's cache key: its crops depend on the real photo groups only, never on generator-only ones."""
    return config_key("real", zoo.image_size, zoo.photos, zoo.crops, zoo.splits, zoo.encoding, zoo.seed)


def build_real_source(storage: Storage, zoo: ZooConfig) -> dict[str, Any]:
    """Cut the real class: each split draws evenly from every content group, from its own random stream."""
    _configure_worker_logging()
    key = real_key(zoo)
    info = {
        "source": REAL_SOURCE,
        "arch": REAL_SOURCE,
        "family": "real",
        "parameters": 0,
        "train_seconds": 0.0,
        "content_group": "all",
    }
    rows = _cached_rows(storage, zoo, REAL_SOURCE, key)
    if rows is not None:
        return {"rows": rows, "info": {**info, "reused_samples": True}}
    info["reused_samples"] = False
    photos = load_photo_groups(zoo.photos, storage.config)
    groups = sorted(photos)
    base = storage.uri(zoo.prefix, "images", REAL_SOURCE)
    storage.delete_prefix(base)
    suffix = file_suffix(zoo.encoding)
    rows = []
    for split, n in zoo.splits.items():
        index = 0
        for g_i, group in enumerate(groups):
            count = n // len(groups) + (1 if g_i < n % len(groups) else 0)
            crops = random_crops(
                photos[group], count, zoo.image_size, derive_seed(zoo.seed, "real", group, split), zoo.crops
            )
            for crop in crops:
                uri = f"{base}/{split}/{REAL_SOURCE}_{split}_{index:05d}{suffix}"
                storage.write_bytes(uri, encode_image(crop, zoo.encoding))
                rows.append(
                    {
                        "uri": uri,
                        "source": REAL_SOURCE,
                        "split": split,
                        "index": index,
                        "arch": REAL_SOURCE,
                        "family": "real",
                        "content_group": group,
                        "seed": zoo.seed,
                    }
                )
                index += 1
    storage.write_json(f"{base}/_DONE.json", {"key": key, "rows": rows})
    return {"rows": rows, "info": info}


def check_generator_only_photos(storage: Storage, zoo: ZooConfig) -> None:
    """Refuse generator-only groups that hold a photograph the real class cuts too: their content would not be
    generator-only. Files are compared by name within one store: sets from different sources (a folder and
    scikit-image's data, say) are not compared."""
    extra = zoo.generator_only_photos
    if extra is None or (extra.source, extra.uri) != (zoo.photos.source, zoo.photos.uri):
        return
    real = {n for names in photo_names(zoo.photos, storage.config).values() for n in names}
    shared = {g: sorted(real & set(names)) for g, names in photo_names(extra, storage.config).items()}
    shared = {g: names for g, names in shared.items() if names}
    if shared:
        raise ValueError(f"generator_only_photos groups hold photographs the real class cuts too: {shared}")


def rows_to_manifest(rows: list[dict[str, Any]]) -> pa.Table:
    ordered = sorted(rows, key=lambda r: (r["source"], r["split"], r["index"]))
    return pa.Table.from_pylist(
        [{name: r[name] for name in MANIFEST_SCHEMA.names} for r in ordered], schema=MANIFEST_SCHEMA
    )


def _configure_worker_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


def build_zoo(storage: Storage, zoo: ZooConfig) -> dict[str, Any]:
    """Train and sample every source as parallel Ray tasks, then write the manifest and the quality report.

    Ray must be initialised by the caller. Returns the report (also written to ``zoo_report.json``).
    """
    import ray

    from causalprint.runtime.ray_local import gpu_count
    from causalprint.zoo.report import measure_quality

    check_generator_only_photos(storage, zoo)
    storage.ensure_bucket()
    use_gpu = gpu_count() > 0
    options = {"num_cpus": zoo.cpus_per_task, "num_gpus": 1 if use_gpu else 0, "max_retries": 1}
    gen_task = ray.remote(build_generator_source).options(**options)
    real_task = ray.remote(build_real_source).options(num_cpus=zoo.cpus_per_task, max_retries=1)
    # Diffusion families (training plus many-step sampling) cost most: start them first, so that the last
    # tasks to finish are short ones and no core idles at the end.
    specs = sorted(zoo.generators, key=lambda s: (GENERATORS.get(s.arch).family != "diffusion", -s.train_steps))
    pending = {real_task.remote(storage, zoo): REAL_SOURCE}
    pending.update({gen_task.remote(storage, zoo, spec): spec.name for spec in specs})
    progress = ProgressLogger(f"zoo {zoo.name}", len(pending), unit="source", every_s=0)
    results: dict[str, dict[str, Any]] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        name = pending.pop(done[0])
        results[name] = ray.get(done[0])
        progress.update(1)
    rows = [row for result in results.values() for row in result["rows"]]
    manifest = rows_to_manifest(rows)
    storage.write_parquet(manifest_uri(storage, zoo), manifest)
    quality = measure_quality(storage, zoo, manifest)
    report = {
        "zoo": zoo.name,
        "image_size": zoo.image_size,
        "manifest": manifest_uri(storage, zoo),
        "images": manifest.num_rows,
        "sources": {name: {**results[name]["info"], **quality.get(name, {})} for name in zoo.sources},
        "quality_floor": quality.get("_floor", {}),
    }
    storage.write_json(storage.uri(zoo.prefix, "zoo_report.json"), report)
    return report
