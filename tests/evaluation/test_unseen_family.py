"""The whole-family open set on a world whose answer is known: every generator shifts one shared direction (the
stronger) and one of its own, real neither. Held out whole, a family is unseen by the prototypes, and the generated
head, trained on the other family, must still answer it as generated while real stays real as often as the
prototypes alone keep it; the job runs from its tiny preset."""

from __future__ import annotations

import numpy as np

from causalprint.data.parts import batch_to_table
from causalprint.evaluation.unseen_family import format_unseen, run_unseen
from causalprint.jobs import job_config
from causalprint.storage import Storage, StorageConfig

FAMILY = {"real": "real", "gan-a": "gan", "gan-b": "gan", "diff-a": "diffusion", "diff-b": "diffusion"}
OWN = {"gan-a": 1, "gan-b": 2, "diff-a": 3, "diff-b": 4}
DIM = 8  # each of the two columns


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sources = np.repeat(list(FAMILY), 2 * n)
    splits = np.tile(np.repeat(["train", "heldout"], n), len(FAMILY))
    x = rng.normal(size=(len(sources), 2 * DIM)).astype(np.float32)
    for i, s in enumerate(sources):
        if s != "real":
            x[i, 0] += 4.0  # the trace every generator shares, in both columns
            x[i, DIM] += 4.0
            x[i, OWN[s]] += 2.0  # and its own
    return {
        "uri": np.array([f"mem://x/{s}/{i}.png" for i, s in enumerate(sources)], dtype=object),
        "ok": np.ones(len(sources), bool),
        "source": sources.astype(object),
        "arch": sources.astype(object),
        "family": np.array([FAMILY[s] for s in sources], dtype=object),
        "split": splits.astype(object),
        "reference_id": np.array(["ref@0"] * len(sources), dtype=object),
        "one_step.dct": x[:, :DIM],
        "one_step.fourier": x[:, DIM:],
    }


def test_each_family_held_out_whole_is_answered_generated_and_real_stays_real(tmp_path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    storage.write_parquet(storage.resolve("features/tiny/part-0.parquet"), batch_to_table(_rows(120, 0)))
    job = job_config("unseen", "tiny", overrides=[f"storage.root={tmp_path}"], environ={})
    rows = run_unseen(job)
    assert [r.family for r in rows] == ["gan", "diffusion"]
    for r in rows:
        assert r.held_out == sorted(s for s, f in FAMILY.items() if f == r.family)
        assert not set(r.held_out) & set(r.classes) and "real" in r.classes
        assert r.auroc > 0.95
        assert r.generated_share > 0.85 and r.answered_real < 0.1  # never read as a photograph
        # The head costs real little: at most its own share turned away, beside what the prototypes keep.
        assert r.real_kept >= r.proto_real_kept - 0.05
        assert r.family_rows == 2 * 120 and r.real_rows == 120
    text = format_unseen(job.unseen, rows)
    assert "| gan | gan-a, gan-b |" in text and "Targets met for" in text
