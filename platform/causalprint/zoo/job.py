"""The zoo build as a job: build, print the table, optionally record it in the results document."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from causalprint.runtime.ray_local import ensure_ray
from causalprint.storage import Storage
from causalprint.zoo.build import build_zoo
from causalprint.zoo.config import ZooJobConfig
from causalprint.zoo.report import format_zoo_table

log = logging.getLogger(__name__)


def run_zoo_build(config: ZooJobConfig, results_path: str | Path | None = None) -> dict[str, Any]:
    """Build the configured zoo on Ray and report it; returns the zoo report."""
    ensure_ray(config.ray)
    storage = Storage(config.storage)
    report = build_zoo(storage, config.zoo)
    table = format_zoo_table(report)
    print(f"zoo {report['zoo']}: {report['images']} images, manifest {report['manifest']}\n{table}")
    if results_path:
        from causalprint.results_doc import update_section

        z = config.zoo
        body = (
            f"{len(z.sources)} sources (real + {len(z.generators)} generators), {z.image_size}x{z.image_size}, "
            f"{', '.join(f'{n} {s}' for s, n in z.splits.items())} images per source, every class encoded as "
            f"{z.encoding.format.upper()}. Training time is wall-clock seconds of one Ray task "
            f"({z.cpus_per_task:g} CPU each, tasks in parallel). KID: kernel inception distance "
            f"(x1e3, mean ± std over {z.quality.subsets} subsets of {z.quality.subset_size}) in EfficientNet-Lite0 "
            f"feature space between {z.quality.images} images of the source and held-out real crops of its "
            "content group; the real-vs-real rows are the floor (real train crops vs real held-out crops)."
            + (" A generator-only group, of which the real class holds no crop, is measured against fresh crops of "
               "its photographs instead (marked \"to crops\"), with two such draws as its floor."
               if z.generator_only_photos is not None else "")
            + "\n\n" + table
        )
        update_section(results_path, f"zoo-{z.name}", f"Generator zoo `{z.name}`", body)
        log.info("results written to %s", results_path)
    return report
