"""The zoo's quality report: KID of each source to real crops of its content group, and a Markdown table."""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from causalprint.data.crops import random_crops
from causalprint.data.photos import load_photo_groups
from causalprint.seeding import derive_seed
from causalprint.storage import Storage
from causalprint.zoo.config import REAL_SOURCE, ZooConfig
from causalprint.zoo.quality import kernel_inception_distance

log = logging.getLogger(__name__)


def embed_images(storage: Storage, uris: list[str], feature_size: int) -> np.ndarray:
    """EfficientNet-Lite0 features of stored images (decoded exactly as written)."""
    import torch

    from causalprint.features.efficientnet import EfficientNetLite0Embedder

    torch.set_num_threads(1)
    images = np.stack([np.asarray(Image.open(io.BytesIO(storage.read_bytes(u))).convert("RGB")) for u in uris])
    return EfficientNetLite0Embedder(input_size=feature_size).embed_uint8(images)


def embed_photo_crops(storage: Storage, zoo: ZooConfig, group: str, n: int, stream: str) -> np.ndarray:
    """EfficientNet-Lite0 features of ``n`` fresh crops of a group's photographs, cut as the zoo cuts its crops
    (PNG is lossless, so these are the pixels a stored crop would hold); ``stream`` names the random draw."""
    import torch

    from causalprint.features.efficientnet import EfficientNetLite0Embedder

    torch.set_num_threads(1)
    photos = load_photo_groups(zoo.photo_set(group), storage.config)[group]
    crops = random_crops(photos, n, zoo.image_size, derive_seed(zoo.seed, stream, group), zoo.crops)
    return EfficientNetLite0Embedder(input_size=zoo.quality.feature_size).embed_uint8(crops)


def _pick(manifest: pa.Table, n: int, seed: int, **equals: str) -> list[str]:
    mask = None
    for column, value in equals.items():
        cond = pc.equal(manifest[column], value)
        mask = cond if mask is None else pc.and_(mask, cond)
    uris = manifest.filter(mask)["uri"].to_pylist()
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(uris, size=min(n, len(uris)), replace=False).tolist()) if uris else []


def measure_quality(storage: Storage, zoo: ZooConfig, manifest: pa.Table) -> dict[str, dict[str, Any]]:
    """KID (mean, std) per source against held-out real crops of its content group, plus the real floor.

    The floor compares real *train* crops with real *held-out* crops of the same group: two samples of the
    same distribution, so any generator's distance should be read relative to it. A generator-only group has
    no real crops in the zoo: its reference and floor are two fresh draws of crops from its photographs.
    """
    import ray

    q = zoo.quality
    splits = list(zoo.splits)
    ref_split, floor_split = splits[-1], splits[0]
    embed = ray.remote(embed_images).options(num_cpus=zoo.cpus_per_task)
    crop_embed = ray.remote(embed_photo_crops).options(num_cpus=zoo.cpus_per_task)
    groups = sorted({g.content_group for g in zoo.generators} | set(zoo.photos.groups))
    reference = {g: f"crops/{g}" if zoo.is_generator_only(g) else f"real/{ref_split}/{g}" for g in groups}
    jobs: dict[str, Any] = {}
    crop_refs: dict[str, Any] = {}
    for group in groups:
        if zoo.is_generator_only(group):
            for kind in ("ref", "floor"):
                crop_refs[f"{kind}:{group}"] = crop_embed.remote(storage, zoo, group, q.images, f"quality-{kind}")
            continue
        jobs[f"ref:{group}"] = _pick(manifest, q.images, 1, source=REAL_SOURCE, split=ref_split, content_group=group)
        if floor_split != ref_split:
            jobs[f"floor:{group}"] = _pick(
                manifest, q.images, 2, source=REAL_SOURCE, split=floor_split, content_group=group
            )
    for spec in zoo.generators:
        jobs[spec.name] = _pick(manifest, q.images, 3, source=spec.name)
    refs = {name: embed.remote(storage, uris, q.feature_size) for name, uris in jobs.items() if uris} | crop_refs
    feats = dict(zip(refs, ray.get(list(refs.values()))))
    out: dict[str, dict[str, Any]] = {}
    floor: dict[str, dict[str, Any]] = {}
    for group in groups:
        if f"floor:{group}" in feats and f"ref:{group}" in feats:
            mean, std = kernel_inception_distance(
                feats[f"floor:{group}"], feats[f"ref:{group}"], q.subsets, q.subset_size
            )
            floor[group] = {"kid": mean, "kid_std": std, "reference": reference[group]}
    for spec in zoo.generators:
        ref = feats.get(f"ref:{spec.content_group}")
        if ref is None or spec.name not in feats:
            continue
        mean, std = kernel_inception_distance(feats[spec.name], ref, q.subsets, q.subset_size)
        out[spec.name] = {"kid": mean, "kid_std": std, "kid_reference": reference[spec.content_group]}
        log.info("quality %s: KID %.4f +- %.4f", spec.name, mean, std)
    out["_floor"] = floor
    return out


def format_zoo_table(report: dict[str, Any]) -> str:
    """Markdown table: per source, its family, parameter count, training time and quality distance."""
    lines = [
        "| source | family | arch | content group | parameters | training time (s) | steps | KID to real (x1e3) |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for name, s in report["sources"].items():
        kid = s.get("kid")
        kid_txt = f"{1e3 * kid:.1f} ± {1e3 * s.get('kid_std', 0.0):.1f}" if kid is not None else "n/a"
        if _to_crops(s.get("kid_reference")):
            kid_txt += " (to crops)"
        lines.append(
            f"| {name} | {s.get('family', '')} | {s.get('arch', '')} | {s.get('content_group', '')} "
            f"| {s.get('parameters', 0):,} | {s.get('train_seconds', 0.0):.0f} | {s.get('train_steps', 0)} "
            f"| {kid_txt} |"
        )
    for group, f in report.get("quality_floor", {}).items():
        label = "crops-vs-crops floor" if _to_crops(f.get("reference")) else "real-vs-real floor"
        lines.append(
            f"| {label} ({group}) | real | | {group} | 0 | 0 | 0 | {1e3 * f['kid']:.1f} ± {1e3 * f['kid_std']:.1f} |"
        )
    return "\n".join(lines)


def _to_crops(reference: str | None) -> bool:
    """Whether a KID was measured against fresh photo crops (a generator-only group) rather than real images."""
    return (reference or "").startswith("crops/")
