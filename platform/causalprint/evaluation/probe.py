"""The separability report: which residual mode x feature space carries the source, by FDR and a linear probe.

For every ``<mode>.<space>`` column of one or more extraction outputs, and for each mode's fusion of all its
spaces, on the chosen sources:
- the Fisher discriminant ratio of standardised held-out embeddings (``trace(S_B) / trace(S_W)``);
- the held-out accuracy of a linear probe trained on the train split;
- the same two for the ManiFPT projection difference to the real manifold. The real index holds half of the
  real *train* images (even manifest index); those rows are left out of the probe, so that no real image is
  compared with itself.
The ``image`` mode (no residual) is the control.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from pydantic import Field

from causalprint.config import StrictModel
from causalprint.data.parts import read_parts, vectors
from causalprint.evaluation.separability import (
    fisher_discriminant_ratio,
    linear_probe_accuracy,
)
from causalprint.features.manifold import RealManifoldIndex
from causalprint.runtime.job_config import JobConfig
from causalprint.storage import Storage
from causalprint.zoo.config import REAL_SOURCE

log = logging.getLogger(__name__)


class ProbeConfig(StrictModel):
    features: list[str] = Field(description="extraction output prefixes to read")
    sources: list[str] | None = Field(default=None, description="classes to separate (None: every source)")
    train_split: str = "train"
    test_split: str = "heldout"
    projection: bool = True
    max_dims: int = Field(default=256, ge=2)
    seed: int = 0


class ProbeJobConfig(JobConfig):
    probe: ProbeConfig


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0) + 1e-8
    return (train - mean) / std, (test - mean) / std


def _evaluate(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, cfg: ProbeConfig
) -> dict[str, float]:
    z_train, z_test = _standardise(x_train, x_test)
    return {
        "fdr": fisher_discriminant_ratio(z_test, y_test),
        "probe_accuracy": linear_probe_accuracy(z_train, y_train, z_test, y_test, seed=cfg.seed, max_dims=cfg.max_dims),
    }


def _projection(x: np.ndarray, index_rows: np.ndarray, ids: list[str], reference_id: str, column: str) -> np.ndarray:
    index = RealManifoldIndex().fit(
        torch.from_numpy(x[index_rows]),
        [ids[i] for i in np.flatnonzero(index_rows)],
        {"space": {"name": column}, "reference_model": {"id": reference_id}, "source_uri_count": int(index_rows.sum())},
    )
    # Columns read from Arrow are read-only views, which torch warns about: those are copied first.
    return index.projection_difference(torch.as_tensor(x if x.flags.writeable else x.copy())).numpy()


def probe_table(table: pa.Table, cfg: ProbeConfig) -> list[dict[str, Any]]:
    """Evaluate every vector column of one extraction output (rows filtered to ok and the chosen sources)."""
    table = table.filter(pc.field("ok"))
    if cfg.sources:
        table = table.filter(pc.is_in(table["source"], pa.array(cfg.sources)))
    split = np.array(table["split"].to_pylist())
    source = np.array(table["source"].to_pylist())
    uris = table["uri"].to_pylist()
    index_rows = (source == REAL_SOURCE) & (split == cfg.train_split) & (np.arange(len(uris)) % 2 == 0)
    train = (split == cfg.train_split) & ~index_rows
    test = split == cfg.test_split
    reference_id = table["reference_id"][0].as_py() if table.num_rows else ""
    columns = sorted(c for c in table.column_names if "." in c)
    results: list[dict[str, Any]] = []
    by_mode: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for column in columns:
        mode, space = column.split(".", 1)
        x = vectors(table, column)
        variants = {"embedding": x}
        if cfg.projection:
            variants["projection difference"] = _projection(x, index_rows, uris, reference_id, column)
        for variant, values in variants.items():
            by_mode.setdefault((mode, variant), []).append(_standardise(values[train], values[test]))
            row = {
                "mode": mode,
                "space": space,
                "variant": variant,
                **_evaluate(values[train], source[train], values[test], source[test], cfg),
            }
            log.info(
                "probe %s.%s (%s): FDR %.3f, accuracy %.3f", mode, space, variant, row["fdr"], row["probe_accuracy"]
            )
            results.append(row)
    for (mode, variant), parts in by_mode.items():
        if len(parts) < 2:
            continue
        fused_train = np.concatenate([p[0] for p in parts], axis=1)
        fused_test = np.concatenate([p[1] for p in parts], axis=1)
        row = {
            "mode": mode,
            "space": "fused",
            "variant": variant,
            **_evaluate(fused_train, source[train], fused_test, source[test], cfg),
        }
        log.info("probe %s.fused (%s): FDR %.3f, accuracy %.3f", mode, variant, row["fdr"], row["probe_accuracy"])
        results.append(row)
    counts = {"train_rows": int(train.sum()), "test_rows": int(test.sum()), "classes": len(set(source))}
    return [{**r, **counts} for r in results]


def run_probe(job: ProbeJobConfig) -> list[dict[str, Any]]:
    """Probe every extraction output in the config."""
    storage = Storage(job.storage)
    rows = []
    for output in job.probe.features:
        for row in probe_table(read_parts(storage, output), job.probe):
            rows.append({"features": output, **row})
    return rows


def format_probe(rows: list[dict[str, Any]]) -> str:
    """Markdown table, best probe accuracy first within each extraction output, the control marked."""
    lines = [
        "| features | residual mode | space | representation | FDR | linear-probe accuracy | train / test rows |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["features"], -r["probe_accuracy"])):
        mode = f"{r['mode']} (control: no residual)" if r["mode"] == "image" else r["mode"]
        lines.append(
            f"| {r['features']} | {mode} | {r['space']} | {r['variant']} | {r['fdr']:.3f} | "
            f"{100 * r['probe_accuracy']:.1f} % | {r['train_rows']} / {r['test_rows']} |"
        )
    return "\n".join(lines)
