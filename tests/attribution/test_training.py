"""Attribution training on Ray Train: data splits, checkpoints in storage, resuming after a worker failure and
after a rerun of the driver, and calibration of the chosen model.

The extraction output is synthetic (x = A[source] + B @ content + noise, written as real feature parts), so a
tiny model must beat chance within a couple of epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from pydantic import ValidationError

from causalprint.attribution.calibration import calibrate
from causalprint.attribution.dataset import DataConfig, _val_mask, load_attribution_data, split_attribution_data
from causalprint.attribution.model import CausalDecoupler, DecouplerConfig, fit_decoupler
from causalprint.attribution.schedule import epoch_lr
from causalprint.attribution.training.checkpoints import load_checkpoint, run_root, save_checkpoint, stored_checkpoints
from causalprint.attribution.training.config import TrainJobConfig
from causalprint.attribution.training.driver import TrainResult, run_training
from causalprint.attribution.training.mlflow_run import RUN_TAG
from causalprint.data.parts import batch_to_table, read_parts
from causalprint.storage import Storage, StorageConfig

SOURCES = {"real": "real", "sd-a": "diffusion", "sd-b": "diffusion", "gan-a": "gan"}
COLUMNS = {"one_step.dct": 8, "one_step.rgb": 6}
TINY_MODEL = {"hidden": 32, "fp_dim": 8, "content_dim": 4}


def write_features(
    storage: Storage,
    output: str = "features/synth",
    per_source: tuple[int, int] = (60, 20),
    seed: int = 0,
    reference_ids: tuple[str, ...] = ("ref-1",),
) -> str:
    """A synthetic extraction output: 2 parts, every source with ``per_source`` (train, heldout) rows, 2 rows
    not ok. Source offsets A live in both columns; content B @ c is shared by all sources."""
    rng = np.random.default_rng(seed)
    dim = sum(COLUMNS.values())
    offsets = {s: 1.5 * rng.normal(size=dim) for s in SOURCES}
    loadings = rng.normal(size=(3, dim))
    rows: dict[str, list] = {k: [] for k in ("uri", "source", "arch", "family", "split", "ok", "reference_id", "x")}
    for source, family in SOURCES.items():
        for split, count in zip(("train", "heldout"), per_source):
            for i in range(count):
                rows["uri"].append(f"s3://zoo/{source}/{split}/{i:04d}.png")
                rows["source"].append(source)
                rows["arch"].append(source.split("-")[0])  # sd-a and sd-b: two instances of one architecture
                rows["family"].append(family)
                rows["split"].append(split)
                rows["ok"].append(not (i == 0 and source == "real"))
                rows["reference_id"].append(reference_ids[i % len(reference_ids)])
                rows["x"].append(offsets[source] + rng.normal(size=3) @ loadings + 0.5 * rng.normal(size=dim))
    write_rows(storage, output, rows)
    return output


def write_rows(storage: Storage, output: str, rows: dict[str, list]) -> None:
    """Two feature parts of ``rows`` (metadata lists plus ``x``, one vector per row, cut into the COLUMNS)."""
    x = np.asarray(rows["x"], dtype=np.float32)
    batch = {k: np.asarray(v, dtype=bool if k == "ok" else object) for k, v in rows.items() if k != "x"}
    start = 0
    for name, width in COLUMNS.items():
        batch[name] = x[:, start : start + width]
        start += width
    half = len(x) // 2
    for part, rows_ in enumerate((slice(0, half), slice(half, None))):
        table = batch_to_table({k: v[rows_] for k, v in batch.items()})
        storage.write_parquet(f"{storage.resolve(output)}/part-{part:03d}.parquet", table)


def make_job(root: Path, name: str, **train) -> TrainJobConfig:
    return TrainJobConfig.model_validate(
        {
            "name": name,
            "storage": {"root": str(root)},
            "ray": {"object_store_mb": 256},
            "data": {"features": "features/synth", "columns": list(COLUMNS), "held_out_sources": ["gan-a"]},
            "model": TINY_MODEL,
            "train": {"epochs": 2, "batch_size": 16, "lr": 1e-2, **train},
            "scaling": {"num_workers": 1, "max_failures": 1, "keep_checkpoints": None},
        }
    )


# ----- data -----


def test_data_splits_labels_and_reference(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    write_features(storage)
    cfg = DataConfig(features="features/synth", columns=list(COLUMNS), held_out_sources=["gan-a"])
    data = load_attribution_data(storage, cfg)
    assert data.class_names == ["real", "sd-a", "sd-b"] and data.reference_id == "ref-1"
    assert data.families == SOURCES and data.input_dim == 14 and data.column_dims == [8, 6]
    # 60 train rows per source (59 ok for real), 10 % of each class to val; test = heldout of known sources.
    assert np.bincount(data.y_val).tolist() == [6, 6, 6]
    assert len(data.y_train) + len(data.y_val) == 179 and len(data.y_test) == 59
    assert len(data.x_unknown) == 20 and set(data.unknown_sources) == {"gan-a"}
    # Columns keep the configured order, and the val carve-out does not depend on the row order.
    table = read_parts(storage, "features/synth")
    flipped = split_attribution_data(table.take(np.arange(table.num_rows)[::-1]), cfg)
    assert sorted(map(tuple, flipped.x_val.tolist())) == sorted(map(tuple, data.x_val.tolist()))
    swapped = load_attribution_data(storage, cfg.model_copy(update={"columns": list(COLUMNS)[::-1]}))
    assert np.array_equal(swapped.x_train[:, :6], data.x_train[:, 8:])

    dropped = load_attribution_data(
        storage, cfg.model_copy(update={"held_out_sources": [], "excluded_sources": ["sd-b"]})
    )
    assert dropped.class_names == ["gan-a", "real", "sd-a"] and len(dropped.x_unknown) == 0

    with pytest.raises(ValueError, match="lacks columns.*one_step.nope.*one_step.dct"):
        load_attribution_data(storage, cfg.model_copy(update={"columns": ["one_step.nope"]}))
    with pytest.raises(ValueError, match=r"held_out_sources \['nope'\] have no ok rows in features/synth"):
        load_attribution_data(storage, cfg.model_copy(update={"held_out_sources": ["nope"]}))
    mixed = Storage(StorageConfig(root=str(tmp_path / "mixed")))
    write_features(mixed, reference_ids=("ref-1", "ref-2"))
    with pytest.raises(ValueError, match=r"2 reference models \['ref-1', 'ref-2'\]"):
        load_attribution_data(mixed, cfg)


def test_named_classes_drop_every_source_the_config_does_not_name(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    write_features(storage)
    cfg = DataConfig(
        features="features/synth", columns=list(COLUMNS), class_sources=["real", "sd-a"], held_out_sources=["gan-a"]
    )
    data = load_attribution_data(storage, cfg)
    # sd-b is named nowhere: none of its rows is read, as if it were excluded.
    assert data.class_names == ["real", "sd-a"] and set(data.unknown_sources) == {"gan-a"}
    assert len(data.y_train) + len(data.y_val) == 119 and len(data.y_test) == 39
    excluded = load_attribution_data(
        storage,
        DataConfig(
            features="features/synth", columns=list(COLUMNS), held_out_sources=["gan-a"], excluded_sources=["sd-b"]
        ),
    )
    assert np.array_equal(data.x_train, excluded.x_train) and np.array_equal(data.x_test, excluded.x_test)
    with_instance = load_attribution_data(storage, cfg.model_copy(update={"architecture_only_sources": ["sd-b"]}))
    assert with_instance.class_names == ["real", "sd-a"] and (with_instance.y_train < 0).sum() == 60

    # A row whose ok is null is no ok row, whichever way sources are dropped.
    table = read_parts(storage, "features/synth")
    ok = table["ok"].to_pylist()
    first_sd_a = table["source"].to_pylist().index("sd-a")
    ok[first_sd_a] = None
    unsure = table.set_column(table.schema.get_field_index("ok"), "ok", pa.array(ok, pa.bool_()))
    for config in (cfg, DataConfig(features="features/synth", columns=list(COLUMNS), held_out_sources=["gan-a"])):
        before, after = split_attribution_data(table, config), split_attribution_data(unsure, config)
        assert (
            len(after.y_train) + len(after.y_val) + len(after.y_test)
            == len(before.y_train) + len(before.y_val) + len(before.y_test) - 1
        )

    # A misspelt class would silently drop it.
    with pytest.raises(ValueError, match=r"class_sources \['sd-c'\] have no ok rows in features/synth"):
        load_attribution_data(storage, cfg.model_copy(update={"class_sources": ["real", "sd-c"]}))
    with pytest.raises(ValueError, match=r"architecture_only_sources \['sd-z'\] have no ok rows"):
        load_attribution_data(storage, cfg.model_copy(update={"architecture_only_sources": ["sd-z"]}))
    with pytest.raises(ValidationError, match=r"class_sources\) or the sources to drop \(excluded_sources\), not both"):
        DataConfig(features="f", columns=["a.b"], class_sources=["real", "sd-a"], excluded_sources=["sd-b"])
    with pytest.raises(ValidationError, match="'gan-a' is in both class_sources and held_out_sources"):
        DataConfig(features="f", columns=["a.b"], class_sources=["real", "gan-a"], held_out_sources=["gan-a"])


def test_architecture_only_sources_train_the_architecture_and_are_no_class(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    write_features(storage)
    cfg = DataConfig(
        features="features/synth", columns=list(COLUMNS), held_out_sources=["gan-a"], architecture_only_sources=["sd-b"]
    )
    data = load_attribution_data(storage, cfg)
    assert data.class_names == ["real", "sd-a"] and data.arch_names == ["real", "sd"]
    # All 60 train rows of sd-b join the train rows (none goes to val), labelled -1 - index("sd") = -2.
    assert (data.y_train == -2).sum() == 60 and set(data.y_train[data.known_train]) == {0, 1}
    assert data.summary()["architecture_only_rows"] == 60
    assert set(data.y_val) == {0, 1} and set(data.y_test) == {0, 1} and set(data.unknown_sources) == {"gan-a"}
    assert len(data.y_test) == 39  # real (19 ok) and sd-a: sd-b's held-out rows are in no split
    job = make_job(tmp_path, "arch")
    model_cfg = job.decoupler_config(data)
    assert model_cfg.architectures == data.class_architectures == ["real", "sd"] and model_cfg.has_architecture_head
    # Trained and calibrated: sd-b's rows shape the architecture head but get no prototype of their own.
    model = fit_decoupler(data.x_train, data.y_train, model_cfg, epochs=3, batch_size=32, lr=1e-2, seed=0)
    assert model.arch_names == data.arch_names
    assert calibrate(model, data).prototypes.labels_ == data.class_names
    # Without an architecture head the rows have nowhere to go: refused before any worker starts.
    no_head = job.model_copy(update={"model": job.model.model_copy(update={"w_arch": 0.0})})
    with pytest.raises(ValueError, match="needs model.w_arch > 0"):
        no_head.decoupler_config(data)

    with pytest.raises(ValueError, match=r"gan-a \(gan\)'\] have an architecture of no class"):
        load_attribution_data(
            storage, cfg.model_copy(update={"held_out_sources": [], "architecture_only_sources": ["gan-a"]})
        )
    with pytest.raises(ValidationError, match="'sd-b' is in both excluded_sources and architecture_only_sources"):
        DataConfig(features="f", columns=list(COLUMNS), excluded_sources=["sd-b"], architecture_only_sources=["sd-b"])


def test_job_config_is_strict_and_builds_the_model_config(tmp_path: Path) -> None:
    job = make_job(tmp_path, "cfg")
    assert job.model.fp_dim == 8 and job.model.w_hsic == DecouplerConfig.model_fields["w_hsic"].default
    assert job.scaling.num_workers == 1 and not job.scaling.use_gpu
    base = job.model_dump()
    for section, bad in (
        ("model", {"input_dim": 3}),
        ("model", {"fp_dim": 0}),
        ("train", {"epochs": 0}),
        ("scaling", {"nope": 1}),
        ("data", {"columns": ["nodot"]}),
    ):
        with pytest.raises(ValidationError):
            TrainJobConfig.model_validate({**base, section: {**base[section], **bad}})
    with pytest.raises(ValidationError, match="'x' is in both held_out_sources and excluded_sources"):
        DataConfig(features="f", columns=["a.b"], held_out_sources=["x"], excluded_sources=["x"])


def test_checkpoint_folder_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CausalDecoupler(DecouplerConfig(input_dim=5, num_classes=2, **TINY_MODEL))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.loss(torch.randn(8, 5), torch.arange(8) % 2)["total"].backward()
    opt.step()
    save_checkpoint(tmp_path, model, opt, 3, [{"epoch": 1.0}])
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.pkl"))
    state = load_checkpoint(tmp_path)
    assert state.epoch == 3 and state.history == [{"epoch": 1.0}]
    fresh = torch.optim.AdamW(state.model.parameters(), lr=1.0)
    fresh.load_state_dict(state.optimizer_state)
    assert fresh.param_groups[0]["lr"] == 1e-2 and fresh.param_groups[0]["betas"] == (0.9, 0.999)
    before, after = opt.state_dict()["state"], fresh.state_dict()["state"]
    assert before.keys() == after.keys()
    for i in before:
        assert all(torch.equal(before[i][k], after[i][k]) for k in ("step", "exp_avg", "exp_avg_sq"))


# ----- Ray Train -----


def _fail_once(marker: Path, log_file: Path, at_epoch: int):
    """An on_epoch_end hook: logs every epoch; the first time rank 0 reaches ``at_epoch`` it raises."""

    def hook(epoch: int, rank: int) -> None:
        with open(log_file, "a") as handle:
            handle.write(f"{epoch}\n")
        if rank == 0 and epoch == at_epoch and not marker.exists():
            marker.touch()
            raise RuntimeError(f"injected failure after epoch {epoch}")

    return hook


def _epochs_logged(log_file: Path) -> list[int]:
    return [int(line) for line in log_file.read_text().split()]


@dataclass
class FlakyRun:
    root: Path
    storage: Storage
    job: TrainJobConfig
    result: TrainResult
    log_file: Path


@pytest.fixture(scope="module")
def flaky_run(tmp_path_factory: pytest.TempPathFactory, ray_session: None) -> FlakyRun:
    """One Ray Train run of 3 epochs whose rank 0 raises once, right after reporting epoch 2."""
    root = tmp_path_factory.mktemp("train")
    storage = Storage(StorageConfig(root=str(root)))
    write_features(storage)
    job = make_job(root, "flaky", epochs=3)
    log_file = root / "epochs.log"
    result = run_training(job, on_epoch_end=_fail_once(root / "failed", log_file, at_epoch=2))
    return FlakyRun(root, storage, job, result, log_file)


@pytest.mark.slow
def test_training_checkpoints_to_storage_and_beats_chance(flaky_run: FlakyRun) -> None:
    import mlflow

    result, storage, job = flaky_run.result, flaky_run.storage, flaky_run.job
    # Checkpoints are folders of safetensors + JSON in storage, one per epoch.
    root = run_root(job, storage)
    names = {f.uri[len(root) + 1 :] for f in storage.list_files(root)}
    for epoch in (1, 2, 3):
        for file in ("model/config.json", "model/model.safetensors", "optimizer.safetensors", "epoch.json"):
            assert f"epoch_{epoch:04d}/{file}" in names
    assert not [n for n in names if n.endswith((".pt", ".pkl"))]
    assert result.checkpoint_uri.startswith(str(flaky_run.root / "train" / "flaky" / "epoch_"))

    # Three known classes: chance is 1/3.
    assert result.metrics["test_accuracy"] > 0.8, result.metrics
    assert (result.model.predict(result.data.x_test) == result.data.y_test).mean() == pytest.approx(
        result.metrics["test_accuracy"]
    )
    # The unknown source is told apart by the distance to the prototypes (measured 0.95 here); the logits'
    # calibrated confidence does not separate it on this synthetic data, so only its presence is checked.
    assert result.metrics["test_proto_auroc"] > 0.8 and "test_auroc" in result.metrics, result.metrics
    calibration = result.calibration
    assert calibration.class_names == ["real", "sd-a", "sd-b"] and calibration.temperature > 0
    assert calibration.prototypes.labels_ == calibration.class_names
    assert calibration.families == {"real": "real", "sd-a": "diffusion", "sd-b": "diffusion"}

    # Rank 0 logged every epoch into the driver's MLflow run, which also holds params and test metrics.
    client = mlflow.MlflowClient(result.tracking_uri)
    assert [m.step for m in client.get_metric_history(result.mlflow_run_id, "val_accuracy")] == [1, 2, 3]
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["reference_id"] == "ref-1" and run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"])


@pytest.mark.slow
def test_worker_failure_resumes_from_the_checkpoint(flaky_run: FlakyRun) -> None:
    result = flaky_run.result
    assert (flaky_run.root / "failed").exists()
    # Epoch 2's checkpoint was reported before the failure: the restarted worker group trained only epoch 3,
    # with the model and optimizer of epoch 2 (a start from scratch would log 1, 2, 1, 2, 3).
    assert _epochs_logged(flaky_run.log_file) == [1, 2, 3]
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert [h["start_epoch"] for h in result.history] == [0, 0, 2]
    assert result.epochs_completed == 3
    # The restarted worker followed the learning-rate schedule from epoch 3 on, not the restored optimizer's rate.
    train = flaky_run.job.train
    assert train.schedule == "cosine"
    assert [h["lr"] for h in result.history] == pytest.approx([epoch_lr(train.lr, e, 3, "cosine") for e in range(3)])
    optimizer = flaky_run.storage.read_json(f"{run_root(flaky_run.job, flaky_run.storage)}/epoch_0003/optimizer.json")
    assert optimizer["param_groups"][0]["lr"] == pytest.approx(epoch_lr(train.lr, 2, 3, "cosine"))


@pytest.mark.slow
def test_driver_rerun_resumes_the_named_run(flaky_run: FlakyRun) -> None:
    """A driver run again under the same name (after a kill, or with more epochs) continues the run."""
    job = flaky_run.job
    # A cosine run's length is part of its schedule: more epochs would restart the decay midway, so are refused.
    longer_cosine = job.model_copy(update={"train": job.train.model_copy(update={"epochs": 4})})
    with pytest.raises(ValueError, match=r"another recipe .*'epochs': \(3, 4\)"):
        run_training(longer_cosine)
    # At a constant rate a run is extended under its name: 2 epochs, then the same run to 3.
    steady = make_job(flaky_run.root, "steady", epochs=2, schedule="constant")
    first = run_training(steady)
    log_file = flaky_run.root / "rerun.log"
    longer = steady.model_copy(update={"train": steady.train.model_copy(update={"epochs": 3})})
    again = run_training(longer, on_epoch_end=_fail_once(flaky_run.root / "never", log_file, at_epoch=99))
    assert _epochs_logged(log_file) == [3]
    assert [h["epoch"] for h in again.history] == [1, 2, 3] and again.history[-1]["start_epoch"] == 2
    assert again.mlflow_run_id == first.mlflow_run_id
    assert set(stored_checkpoints(longer, flaky_run.storage)) == {1, 2, 3}
    # Once every epoch is done, a rerun starts no worker: it calibrates the same checkpoint again.
    idle = flaky_run.root / "idle.log"
    same = run_training(longer, on_epoch_end=_fail_once(flaky_run.root / "never", idle, at_epoch=99))
    assert not idle.exists() and same.checkpoint_uri == again.checkpoint_uri
    assert same.metrics["test_accuracy"] == again.metrics["test_accuracy"]
    # Another model under the same name is refused, before any worker starts, rather than mixed with the old
    # checkpoints.
    other = job.model_copy(update={"model": job.model.model_copy(update={"fp_dim": 6})})
    with pytest.raises(ValueError, match=r"'fp_dim': \(8, 6\).*choose a new name"):
        run_training(other)
    # So is another training recipe (a schedule or rate would silently change mid-run).
    faster = job.model_copy(update={"train": job.train.model_copy(update={"lr": 0.05})})
    with pytest.raises(ValueError, match=r"another recipe .*'lr': \(0\.01, 0\.05\).*choose a new name"):
        run_training(faster)
    # A cosine run resumed at a constant rate: the schedule and the length it pinned both change.
    steady_rate = job.model_copy(update={"train": job.train.model_copy(update={"schedule": "constant"})})
    with pytest.raises(
        ValueError,
        match=r"another recipe .*'schedule': \('cosine', 'constant'\).*'epochs': "
        r"\(3, None\)",
    ):
        run_training(steady_rate)
    # A data field added since the run was recorded takes its default: the run still resumes.
    latest = f"{run_root(job, flaky_run.storage)}/epoch_0003/epoch.json"
    recorded = flaky_run.storage.read_json(latest)
    older = {
        **recorded,
        "recipe": {
            **recorded["recipe"],
            "data": {k: v for k, v in recorded["recipe"]["data"].items() if k != "architecture_only_sources"},
        },
    }
    flaky_run.storage.write_json(latest, older)
    try:
        assert run_training(job).epochs_completed == 3
    finally:
        flaky_run.storage.write_json(latest, recorded)
    # Excluding a source that trains nothing (one added to the zoo since, a new shift round say) leaves the run
    # resumable; excluding a class changes the classes, and is refused.
    newer_zoo = job.model_copy(update={"data": job.data.model_copy(update={"excluded_sources": ["sd-new"]})})
    assert run_training(newer_zoo).epochs_completed == 3
    # The same classes named instead of implied are the same rows.
    named = job.model_copy(update={"data": job.data.model_copy(update={"class_sources": ["real", "sd-a", "sd-b"]})})
    assert run_training(named).epochs_completed == 3
    fewer = job.model_copy(update={"data": job.data.model_copy(update={"excluded_sources": ["sd-b"]})})
    with pytest.raises(ValueError, match=r"another model or data.*class_names.*choose a new name"):
        run_training(fewer)
    # And other rows: a changed data config (here the validation share) would train a different run.
    other_rows = job.model_copy(update={"data": job.data.model_copy(update={"val_fraction": 0.2})})
    with pytest.raises(ValueError, match=r"another recipe .*'data\.val_fraction': \(0\.1, 0\.2\)"):
        run_training(other_rows)


@pytest.mark.slow
def test_train_and_register_job(flaky_run: FlakyRun) -> None:
    """The command-line job: the finished run is calibrated (no worker starts), registered and promoted."""
    import mlflow

    from causalprint.jobs.train import TrainRegisterJobConfig
    from causalprint.jobs.train import describe as format_training
    from causalprint.jobs.train import run as train_and_register
    from causalprint.tracking.versions import MODEL_NAME

    gate = {"minimum": {"test_accuracy": 0.8}}
    job = TrainRegisterJobConfig.model_validate({**flaky_run.job.model_dump(), "gate": gate})
    summary = train_and_register(job)
    assert summary["promoted"] and summary["champion_before"] is None, summary
    client = mlflow.MlflowClient(flaky_run.result.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert summary["model"] == f"models:/{MODEL_NAME}/{champion.version}"
    # The version's run is a child of the training run and records which checkpoint it came from.
    run = client.get_run(champion.run_id)
    assert run.data.tags["mlflow.parentRunId"] == flaky_run.result.mlflow_run_id
    assert run.data.params["checkpoint"] == summary["checkpoint"] == flaky_run.result.checkpoint_uri
    # Every epoch was timed in its worker; the report names the rows, the time and the gate's decision.
    assert len(summary["epoch_seconds"]) == job.train.epochs and sum(summary["epoch_seconds"]) > 0
    summary["wall_seconds"] = 1.0
    report = format_training(summary)
    assert f"{summary['data']['train_rows']} train rows" in report and "promoted to champion" in report
    assert f"| test_accuracy | {summary['metrics']['test_accuracy']:.4f} |" in report
    # Recall per class on the same test rows: test_accuracy is their row-weighted mean, so it lies between them.
    recall = summary["test_recall"]
    assert list(recall) == flaky_run.result.data.class_names
    assert min(recall.values()) - 1e-4 <= summary["metrics"]["test_accuracy"] <= max(recall.values()) + 1e-4
    assert "Test recall per source (closed set): " in report
    # The version's run carries the training's name too, and is newer: a rerun still reopens the training run.
    assert run.data.tags[RUN_TAG] == job.name
    assert run_training(flaky_run.job).mlflow_run_id == flaky_run.result.mlflow_run_id


def test_several_outputs_read_as_one(tmp_path: Path) -> None:
    """A clean output and a perturbed copy of it (same URIs) are read as one table: every split doubles."""
    storage = Storage(StorageConfig(root=str(tmp_path)))
    write_features(storage, "features/clean", seed=0)
    write_features(storage, "features/copy", seed=1)
    one = load_attribution_data(storage, DataConfig(features="features/clean", columns=list(COLUMNS)))
    both = load_attribution_data(
        storage, DataConfig(features=["features/clean", "features/copy"], columns=list(COLUMNS))
    )
    assert both.class_names == one.class_names
    assert (len(both.y_train), len(both.y_val), len(both.y_test)) == (
        2 * len(one.y_train),
        2 * len(one.y_val),
        2 * len(one.y_test),
    )


def test_copies_of_an_image_fall_on_the_same_side_of_the_validation_carve_out() -> None:
    """Validation never sees an image whose other copy trained the model: the carve-out is per URI."""
    uris = [f"s3://zoo/s/{i:04d}.png" for i in range(60)]
    labels = np.repeat([0, 1, 2], 20)
    mask = _val_mask(uris + uris, np.r_[labels, labels], 0.1)
    assert mask.any() and (mask[:60] == mask[60:]).all()
    assert [int(mask[:60][labels == k].sum()) for k in range(3)] == [2, 2, 2]  # round(0.1 * 20) per class


def test_a_source_named_twice_in_one_role_is_refused() -> None:
    with pytest.raises(ValidationError, match="'vae-a' is twice in architecture_only_sources"):
        DataConfig(features="f", columns=["latent.dct"], architecture_only_sources=["vae-a", "vae-a"])
    with pytest.raises(ValidationError, match="'vae-a' is in both held_out_sources and excluded_sources"):
        DataConfig(features="f", columns=["latent.dct"], held_out_sources=["vae-a"], excluded_sources=["vae-a"])
