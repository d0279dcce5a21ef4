"""The separability report on a synthetic extraction output with known answers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from causalprint.data.parts import batch_to_table
from causalprint.evaluation.probe import ProbeConfig, format_probe, probe_table


def _table(n_per_class: int = 40, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    sources = np.repeat(["real", "gan-a", "gan-b"], 2 * n_per_class)
    splits = np.tile(np.repeat(["train", "heldout"], n_per_class), 3)
    centres = {"real": 0.0, "gan-a": 4.0, "gan-b": -4.0}
    separable = np.stack([rng.normal(centres[s], 1.0, size=6) for s in sources]).astype(np.float32)
    noise = rng.normal(size=(len(sources), 6)).astype(np.float32)
    return batch_to_table(
        {
            "uri": np.array([f"u{i}" for i in range(len(sources))], dtype=object),
            "ok": np.ones(len(sources), bool),
            "source": sources.astype(object),
            "split": splits.astype(object),
            "reference_id": np.array(["ref@0"] * len(sources), dtype=object),
            "one_step.dct": separable,
            "image.rgb": noise,
        }
    )


def test_separable_column_wins_and_noise_is_at_chance() -> None:
    rows = probe_table(_table(), ProbeConfig(features=["x"], max_dims=4))
    by = {(r["mode"], r["space"], r["variant"]): r for r in rows}
    good, noise = by[("one_step", "dct", "embedding")], by[("image", "rgb", "embedding")]
    assert good["probe_accuracy"] > 0.95 and good["fdr"] > 5 * noise["fdr"]
    assert noise["probe_accuracy"] < 0.6
    assert ("one_step", "dct", "projection difference") in by
    # Half of the real train rows form the index and are left out of the probe's training rows.
    assert good["train_rows"] == 3 * 40 - 20 and good["test_rows"] == 3 * 40


def test_sources_filter_and_format() -> None:
    rows = probe_table(_table(), ProbeConfig(features=["x"], sources=["gan-a", "gan-b"], projection=False))
    assert {r["classes"] for r in rows} == {2}
    text = format_probe([{"features": "x", **r} for r in rows])
    assert "control: no residual" in text and text.count("\n") == len(rows) + 1
