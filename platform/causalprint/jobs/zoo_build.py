"""``causalprint zoo build``: train the zoo's generators, sample them and write the images and their manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalprint.jobs.spec import Section
from causalprint.runtime.job_config import JobConfig
from causalprint.runtime.ray_local import ensure_ray
from causalprint.storage import Storage
from causalprint.zoo.build import build_zoo
from causalprint.zoo.config import ZooConfig
from causalprint.zoo.report import format_zoo_table


class ZooJobConfig(JobConfig):
    zoo: ZooConfig


CONFIG = ZooJobConfig


def run(config: ZooJobConfig) -> dict[str, Any]:
    """Build the configured zoo on Ray; returns the zoo report (``build_zoo``'s)."""
    ensure_ray(config.ray)
    return build_zoo(Storage(config.storage), config.zoo)


def describe(report: dict[str, Any]) -> str:
    return f"zoo {report['zoo']}: {report['images']} images, manifest {report['manifest']}\n{format_zoo_table(report)}"


def section(config: ZooJobConfig, report: dict[str, Any], preset: str, docs_dir: Path) -> Section:
    z = config.zoo
    body = (
        f"{len(z.sources)} sources (real + {len(z.generators)} generators), {z.image_size}x{z.image_size}, "
        f"{', '.join(f'{n} {s}' for s, n in z.splits.items())} images per source, every class encoded as "
        f"{z.encoding.format.upper()}. Training time is wall-clock seconds of one Ray task "
        f"({z.cpus_per_task:g} CPU each, tasks in parallel). KID: kernel inception distance "
        f"(x1e3, mean ± std over {z.quality.subsets} subsets of {z.quality.subset_size}) in EfficientNet-Lite0 "
        f"feature space between {z.quality.images} images of the source and held-out real crops of its "
        "content group; the real-vs-real rows are the floor (real train crops vs real held-out crops)."
        + (
            " A generator-only group, of which the real class holds no crop, is measured against fresh crops of "
            'its photographs instead (marked "to crops"), with two such draws as its floor.'
            if z.generator_only_photos is not None
            else ""
        )
        + "\n\n"
        + format_zoo_table(report)
    )
    return Section(f"zoo-{z.name}", f"Generator zoo `{z.name}`", body)
