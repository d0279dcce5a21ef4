"""The source study: variants of a train preset that differ in their architecture-only instances, each trained by
the training job and scored on shift copies at its chosen checkpoint."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from pydantic import ValidationError
from test_training import COLUMNS, TINY_MODEL, write_rows

from causalprint.attribution import source_study
from causalprint.attribution.source_study import (
    StudyConfig,
    StudyJobConfig,
    VariantScore,
    chosen_variant,
    format_study,
    run_study,
    study_summary,
    variant_job,
)
from causalprint.attribution.training.checkpoints import load_checkpoint
from causalprint.cli import main
from causalprint.data.parts import read_parts
from causalprint.evaluation.eval_rows import load_eval_rows
from causalprint.presets import preset_names
from causalprint.storage import Storage, StorageConfig
from causalprint.storage.folders import download_folder

ARCH = {"real": "real", "gan": "gan", "gan-b": "gan", "sd": "sd", "sd-b": "sd", "gan-shift": "gan", "sd-shift": "sd"}
FAMILY = {"real": "real", "gan": "gan", "sd": "diffusion"}
SHIFT = ["gan-shift", "sd-shift"]
TRAIN = {
    "data": {"features": "features/synth", "columns": list(COLUMNS), "class_sources": ["real", "gan", "sd"]},
    "model": TINY_MODEL,
    "train": {"epochs": 2, "batch_size": 16, "lr": 1e-2},
    "scaling": {"num_workers": 1, "keep_checkpoints": None},
}
STUDY = {
    "name": "synth",
    "train_preset": "synth",
    "groups": {"instances": ["gan-b", "sd-b"]},
    "variants": {"none": [], "with": ["instances"]},
    "shift_sources": SHIFT,
    "features": "features/synth",
    "rule": "the higher shift mean",
    "min_val_accuracy": 0.0,
}


def _write_features(storage: Storage) -> None:
    """x = architecture + instance + content offsets + noise; the shift copies carry another content."""
    rng = np.random.default_rng(0)
    dim = sum(COLUMNS.values())
    arch_offset = {a: 2.0 * rng.normal(size=dim) for a in set(ARCH.values())}
    instance = {s: 0.5 * rng.normal(size=dim) for s in ARCH}
    content = {False: rng.normal(size=dim), True: rng.normal(size=dim)}
    rows: dict[str, list] = {k: [] for k in ("uri", "source", "arch", "family", "split", "ok", "reference_id", "x")}
    for source, arch in ARCH.items():
        for split, count in (("train", 40), ("heldout", 15)):
            for i in range(count):
                rows["uri"].append(f"s3://zoo/{source}/{split}/{i:04d}.png")
                rows["source"].append(source)
                rows["arch"].append(arch)
                rows["family"].append(FAMILY[arch])
                rows["split"].append(split)
                rows["ok"].append(True)
                rows["reference_id"].append("ref-1")
                rows["x"].append(
                    arch_offset[arch] + instance[source] + content[source in SHIFT] + 0.3 * rng.normal(size=dim)
                )
    write_rows(storage, "features/synth", rows)


@pytest.fixture()
def synth_train_preset(monkeypatch) -> None:
    real = source_study.load_preset
    monkeypatch.setattr(
        source_study,
        "load_preset",
        lambda kind, name: TRAIN if (kind, name) == ("train", "synth") else real(kind, name),
    )


def _job(root) -> StudyJobConfig:
    return StudyJobConfig.model_validate(
        {"storage": {"root": str(root)}, "ray": {"object_store_mb": 256}, "study": STUDY}
    )


def test_a_variant_trains_on_its_instances_and_nothing_else(synth_train_preset, tmp_path) -> None:
    job = _job(tmp_path)
    none, with_ = variant_job(job, "none"), variant_job(job, "with")
    assert none.name == "study-synth-none" and with_.name == "study-synth-with"
    assert none.data.architecture_only_sources == [] and none.data.named_sources == ["real", "gan", "sd"]
    assert with_.data.architecture_only_sources == ["gan-b", "sd-b"]
    assert with_.data.named_sources == ["real", "gan", "sd", "gan-b", "sd-b"]
    assert with_.storage.root == str(tmp_path) and with_.train.epochs == 2


def test_a_variant_may_read_its_own_columns(synth_train_preset, tmp_path) -> None:
    narrow = list(COLUMNS)[:1]
    study = {**STUDY, "variants": {"none": (), "narrow": {"groups": ["instances"], "columns": narrow}}}
    job = StudyJobConfig.model_validate({"storage": {"root": str(tmp_path)}, "study": study})
    assert job.study.variants["none"].groups == [] and job.study.variants["none"].columns is None
    assert variant_job(job, "none").data.columns == list(COLUMNS)  # the preset's
    assert variant_job(job, "narrow").data.columns == narrow
    assert variant_job(job, "narrow").data.architecture_only_sources == ["gan-b", "sd-b"]
    with pytest.raises(ValidationError, match="columns must look like <mode>.<space>"):
        variant_job(
            job.model_copy(
                update={
                    "study": job.study.model_copy(
                        update={
                            "variants": {"bad": job.study.variants["narrow"].model_copy(update={"columns": ["nodot"]})}
                        }
                    )
                }
            ),
            "bad",
        )


def test_a_variants_missing_column_is_refused_before_any_variant_trains(
    synth_train_preset, tmp_path, monkeypatch
) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    _write_features(storage)
    # A second training output that lacks a column the shift rows (features/synth) have.
    narrow = read_parts(storage, "features/synth").drop_columns([list(COLUMNS)[1]])
    storage.write_parquet(f"{storage.resolve('features/other')}/part-000.parquet", narrow)
    preset = {**TRAIN, "data": {**TRAIN["data"], "features": ["features/synth", "features/other"]}}
    monkeypatch.setattr(source_study, "load_preset", lambda kind, name: preset)
    monkeypatch.setattr(source_study, "run_training", lambda job: pytest.fail(f"{job.name} trained"))
    study = {**STUDY, "variants": {"first": {"groups": [], "columns": list(COLUMNS)[:1]}, "wide": ["instances"]}}
    job = StudyJobConfig.model_validate({"storage": {"root": str(tmp_path)}, "study": study})
    with pytest.raises(ValueError, match=rf"features/other lacks columns \['{list(COLUMNS)[1]}'\]"):
        run_study(job)


def test_a_study_needs_a_train_preset_that_names_its_classes(monkeypatch, tmp_path) -> None:
    # With a list of dropped sources instead, an instance no variant chooses would become one more class.
    dropping = {
        **TRAIN,
        "data": {**{k: v for k, v in TRAIN["data"].items() if k != "class_sources"}, "excluded_sources": SHIFT},
    }
    monkeypatch.setattr(source_study, "load_preset", lambda kind, name: dropping)
    with pytest.raises(ValueError, match=r"train preset 'synth' must name its classes \(data.class_sources\)"):
        variant_job(_job(tmp_path), "none")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variants": {"with": ["nope"]}}, r"unknown groups \['nope'\]"),
        ({"shift_sources": ["gan-b"]}, r"\['gan-b'\] are both trained on"),
        ({"variants": {"With": ["instances"]}}, "variant name 'With' must match"),
        ({"variants": {"w": {"groups": ["instances"], "columns": []}}}, "at least 1 item"),
        ({"variants": {"w": {"groups": ["instances"], "nope": 1}}}, "Extra inputs are not permitted"),
        ({"variants": {"w": {"columns": ["one_step.dct"]}}}, r"variants.w.groups\n  Field required"),
    ],
)
def test_a_study_that_cannot_be_run_is_refused(change, message) -> None:
    with pytest.raises(ValidationError, match=message):
        StudyConfig.model_validate({**STUDY, **change})


def test_the_rule_takes_the_highest_shift_mean_among_variants_that_reach_the_validation_bound() -> None:
    def score(name: str, val: float, shift: float) -> VariantScore:
        return VariantScore(name, [], 1, val, 0.99, {"gan-shift": shift, "sd-shift": shift}, "", None)

    scores = [score("a", 0.980, 0.80), score("b", 0.970, 0.95), score("c", 0.975, 0.90)]
    study = StudyConfig.model_validate(
        {**STUDY, "min_val_accuracy": 0.975, "variants": {"a": [], "b": ["instances"], "c": ["instances"]}}
    )
    assert chosen_variant(study, scores).name == "c"  # b has the higher mean and misses the bound
    assert chosen_variant(study.model_copy(update={"min_val_accuracy": 0.0}), scores).name == "b"
    assert chosen_variant(study.model_copy(update={"min_val_accuracy": 0.99}), scores) is None
    # No variant names columns: the table keeps the layout of the studies reported before columns existed.
    table = format_study(study, scores)
    assert "input columns" not in table and "| b | instances | 0 | 1 | 0.9700 |" in table
    assert "shift mean): none reaches the bound." in format_study(
        study.model_copy(update={"min_val_accuracy": 0.99}), scores
    )


def test_an_unknown_study_preset_is_refused(capsys) -> None:
    assert main(["study", "--preset", "nope"]) == 2
    known = ", ".join(preset_names("study"))
    assert "bench-layer" in known and f"unknown study preset 'nope'; known: {known}" in capsys.readouterr().err


@pytest.mark.slow
def test_each_variant_is_trained_scored_on_its_chosen_checkpoint_and_reused(
    synth_train_preset, tmp_path, ray_session, monkeypatch
) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    _write_features(storage)
    narrow = list(COLUMNS)[1:]
    job = _job(tmp_path)
    # The first variant reads fewer columns than the others: the shift rows must hold every variant's.
    job = job.model_copy(
        update={
            "study": StudyConfig.model_validate(
                {**STUDY, "variants": {"narrow": {"groups": ["instances"], "columns": narrow}, **STUDY["variants"]}}
            )
        }
    )
    scores = run_study(job)
    assert [s.name for s in scores] == ["narrow", "none", "with"]
    rows = load_eval_rows(storage, "features/synth", list(COLUMNS), SHIFT, "heldout")
    for score in scores:
        columns = narrow if score.name == "narrow" else list(COLUMNS)
        x = np.concatenate([rows.inputs[c] for c in columns], axis=1)
        with tempfile.TemporaryDirectory() as tmp:
            state = load_checkpoint(download_folder(storage, score.checkpoint_uri, tmp))
        # The study's pool instances never become classes; the shift copies are never trained on.
        assert state.model.config.class_names == ["gan", "real", "sd"]
        recipe = storage.read_json(f"{score.checkpoint_uri}/epoch.json")["recipe"]
        assert recipe["data"]["architecture_only_sources"] == score.sources
        assert recipe["data"]["columns"] == columns and state.model.config.input_dim == x.shape[1]
        assert state.epoch == score.chosen_epoch
        # Each copy's figure is the chosen checkpoint's architecture head on that copy's test rows.
        pred = state.model.predict_architecture(x)
        for copy in SHIFT:
            mine = rows.source == copy
            assert score.shift[copy] == pytest.approx(float((pred[mine] == rows.arch[mine]).mean()))
        assert 0.0 < score.val_accuracy <= 1.0 and 0.0 < score.test_accuracy <= 1.0
    assert [row["columns"] for row in study_summary(job.study, scores)] == [narrow, list(COLUMNS), list(COLUMNS)]
    table = format_study(job.study, scores)
    assert table.startswith("Rule, fixed before the runs: the higher shift mean")
    assert f"then the highest shift mean): **{chosen_variant(job.study, scores).name}**." in table
    assert "| with | instances | the preset's | 2 |" in table and "| none |  | the preset's | 0 |" in table
    assert f"| narrow | instances | {', '.join(narrow)} | 2 |" in table
    assert next(line for line in table.splitlines() if line.startswith("| gan-shift |")).count("|") == 5

    # A rerun finds every variant's checkpoints: nothing trains again, and the figures are the same.
    from causalprint.attribution.training import driver

    monkeypatch.setattr(driver, "_fit", lambda *a, **k: pytest.fail("a complete run trained again"))
    again = run_study(job)
    assert [(s.shift, s.val_accuracy, s.checkpoint_uri) for s in again] == [
        (s.shift, s.val_accuracy, s.checkpoint_uri) for s in scores
    ]
