"""The evaluation job end to end on the tiny zoo (S3 server): perturbed test sets are extracted, our registered
models and the baselines are scored on the same rows, results land in MLflow, and a rerun reuses everything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from causalprint.attribution.calibration import calibrate
from causalprint.attribution.dataset import DataConfig, load_attribution_data
from causalprint.attribution.model import DecouplerConfig, fit_decoupler
from causalprint.attribution.training.driver import TrainResult
from causalprint.attribution.training.evaluate import evaluate
from causalprint.data.parts import read_parts
from causalprint.evaluation.conditions import Condition, default_conditions
from causalprint.evaluation.evaluate_job import (
    BaselineSpec,
    EvaluateConfig,
    EvaluateJobConfig,
    format_evaluation,
    run_evaluation,
)
from causalprint.evaluation.robustness import RobustnessConfig
from causalprint.extraction.config import ExtractConfig, ExtractJobConfig, SpaceSpec
from causalprint.extraction.pipeline import run_extract
from causalprint.perturbations import PerturbationSpec
from causalprint.storage import Storage
from causalprint.storage.folders import upload_folder
from causalprint.tracking.mlflow_setup import MlflowConfig, configure_mlflow
from causalprint.tracking.versions import register_version

pytestmark = pytest.mark.slow

SOURCES = ["real", "dcgan", "dcgan-twin", "wgan-gp", "stylegan", "sngan", "ddpm", "ddim", "ldm", "vae"]
SHIFT = ["dcgan-shift", "stylegan-shift", "ldm-shift", "vae-shift"]
COLUMNS = ["latent.dct", "image.dct"]
MODES = {"latent": {}, "image": {}}
SPACES = [SpaceSpec(name="rgb"), SpaceSpec(name="dct")]


def _register(storage: Storage, held_out: list[str], name: str, model_name: str, tracking: str) -> None:
    data = load_attribution_data(
        storage,
        DataConfig(features="features/eval", columns=COLUMNS, held_out_sources=held_out, excluded_sources=SHIFT),
    )
    torch.manual_seed(0)
    config = DecouplerConfig(
        input_dim=data.input_dim,
        num_classes=data.num_classes,
        class_names=data.class_names,
        hidden=32,
        fp_dim=8,
        content_dim=8,
        projection_dim=16,
    )
    model = fit_decoupler(data.x_train, data.y_train, config, epochs=5, batch_size=16, lr=3e-3, seed=0)
    calibration = calibrate(model, data)
    result = TrainResult(
        name=name,
        model=model,
        calibration=calibration,
        data=data,
        metrics=evaluate(model, calibration, data),
        history=[],
        checkpoint_uri="(in-process)",
        epochs_completed=5,
        features="features/eval",
        tracking_uri=tracking,
    )
    register_version(result, model_name=model_name, experiment="eval-test")


@pytest.fixture(scope="module")
def evaluation(tiny_zoo_s3: Storage, tiny_reference_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    storage = tiny_zoo_s3
    upload_folder(storage, tiny_reference_dir, "models/reference/eval")
    run_extract(
        ExtractJobConfig(
            storage=storage.config,
            extract=ExtractConfig(
                input="zoo/tiny/manifest.parquet",
                output="features/eval",
                reference="models/reference/eval",
                modes=MODES,
                spaces=SPACES,
                batch_size=32,
            ),
        )
    )
    tmp = tmp_path_factory.mktemp("evaluate")
    mlflow_cfg = MlflowConfig(
        tracking_uri=f"sqlite:///{tmp}/mlflow.db", experiment="eval-test", artifact_location=str(tmp / "artifacts")
    )
    configure_mlflow(mlflow_cfg, storage)
    _register(storage, [], "closed", "eval-closed", mlflow_cfg.tracking_uri)
    _register(storage, ["sngan"], "open", "eval-open", mlflow_cfg.tracking_uri)
    conditions = [c for c in default_conditions() if c.name in ("clean", "jpeg75")]
    job = EvaluateJobConfig(
        storage=storage.config,
        mlflow=mlflow_cfg,
        evaluate=EvaluateConfig(
            name="tiny",
            model="models:/eval-closed@candidate",
            openset_model="models:/eval-open@candidate",
            manifest="zoo/tiny/manifest.parquet",
            reference="models/reference/eval",
            features="features/eval",
            train_features=["features/eval"],
            sources=SOURCES,
            held_out_sources=["sngan"],
            shift_sources=SHIFT[:2],
            fresh_shift_sources=SHIFT[2:],
            twins=["dcgan", "dcgan-twin"],
            baselines=[BaselineSpec(name="frank2020", options={"epochs": 5}), BaselineSpec(name="aeroblade")],
            baseline_cache="evaluation/cache",
            figures=str(tmp / "figures"),
            enrol_shots=[2, 6],
            robustness=RobustnessConfig(
                output="features/eval-robust", per_source_limit=3, modes=MODES, spaces=SPACES, conditions=conditions
            ),
        ),
    )
    return storage, job, run_evaluation(job)


def test_every_method_is_scored_on_every_condition(evaluation) -> None:
    _, job, result = evaluation
    assert [s.name for s in result.scores] == [
        "causalprint (ours, prototypes)",
        "causalprint (ours, logits)",
        "frank2020",
        "aeroblade",
    ]
    for s in result.scores:
        assert set(s.conditions) == {"clean", "jpeg75"} and set(s.open_set) == {"clean", "jpeg75"}
        assert s.rows["clean"] == 6 * len(SOURCES) and s.rows["jpeg75"] == 3 * len(SOURCES)
        assert 0.0 <= s.conditions["clean"]["accuracy"] <= 1.0 and 0.0 <= s.open_set["clean"]["auroc"] <= 1.0
        assert s.shift_rows == s.fresh_shift_rows == 6 * 2
        assert 0.0 <= s.shift_architecture_accuracy <= 1.0 and 0.0 <= s.fresh_shift_architecture_accuracy <= 1.0
        assert set(s.shift_by_source) == set(SHIFT)  # each copy's line: shift and fresh shift copies
        assert sum(sum(v["predicted"].values()) for v in s.shift_by_source.values()) == 6 * len(SHIFT)
        fresh = [s.shift_by_source[c]["architecture_accuracy"] for c in SHIFT[2:]]
        assert s.fresh_shift_architecture_accuracy == pytest.approx(np.mean(fresh))  # equal rows per copy
    table = format_evaluation(result)
    assert "| causalprint (ours, prototypes) |" in table and "jpeg75" in table and "| frank2020 |" in table
    assert "| fresh shift (arch.) |" in table and "fresh shift = the same on ldm-shift, vae-shift" in table
    # The report names the versions scored, with the aliases they were asked by.
    assert result.models == {"closed set": "models:/eval-closed/1", "open set": "models:/eval-open/1"}
    assert "Ours: closed set `models:/eval-closed/1` (`models:/eval-closed@candidate`)" in table
    header = next(line for line in table.splitlines() if line.startswith("| method |")).split(" | ")
    row = next(line for line in table.splitlines() if line.startswith("| frank2020 |")).split(" | ")
    frank = next(s for s in result.scores if s.name == "frank2020")
    assert (
        row[header.index("fresh shift (arch.)")].strip("* ") == f"{100 * frank.fresh_shift_architecture_accuracy:.1f}"
    )
    assert Path(result.figures["confusion"]).stat().st_size > 0
    # Example images of every shift copy, one row each (read from the zoo by the rows' URIs).
    from PIL import Image

    with Image.open(result.figures["shift_examples"]) as png:
        assert png.size[1] > 50 * len(SHIFT) and png.size[0] > png.size[1]


def test_the_held_out_source_is_enrolled_into_the_open_set_instance(evaluation) -> None:
    import mlflow

    _, job, result = evaluation
    assert [r["shots"] for r in result.enrolment] == [2, 6]  # the tiny zoo holds 6 train images per source
    for r in result.enrolment:
        assert r["heldout_rows"] == 6 and r["known_rows"] == 6 * (len(SOURCES) - 1)
        assert 0.0 <= r["heldout_attributed"] <= r["heldout_top1"] <= 1.0 and 0.0 <= r["known_attributed"] <= 1.0
    # Before enrolment: the open-set instance's own decisions, the same whatever k.
    assert result.enrolment[0]["known_attributed_before"] == result.enrolment[1]["known_attributed_before"] > 0.0
    assert "Enrolment without retraining (the open-set instance; each of sngan enrolled from k of" in format_evaluation(
        result
    )
    run = mlflow.MlflowClient(job.mlflow.tracking_uri).get_run(result.mlflow_run_id)
    assert run.data.metrics["enrolment.k6.heldout_top1"] == pytest.approx(result.enrolment[1]["heldout_top1"])


def test_enrolment_draws_from_the_held_out_sources_train_rows(evaluation, monkeypatch) -> None:
    from causalprint.evaluation import evaluate_job

    seen = {}
    score = evaluate_job.score_enrolment

    def spy(attributor, train, test, *args, **kwargs):
        seen.update(train=train, test=test, columns=list(attributor.requirements["columns"]))
        return score(attributor, train, test, *args, **kwargs)

    monkeypatch.setattr(evaluate_job, "score_enrolment", spy)
    _, job, first = evaluation
    again = run_evaluation(job)
    assert again.enrolment == first.enrolment
    train, test = seen["train"], seen["test"]
    assert set(train.source) == {"sngan"} and all("/train/" in u for u in train.uri)
    assert set(test.source) == set(SOURCES) and all("/heldout/" in u for u in test.uri)
    assert sorted(train.inputs) == sorted(seen["columns"])  # the open-set instance's own columns only


def test_perturbed_test_set_is_extracted_once_with_its_perturbation(evaluation) -> None:
    storage, _, _ = evaluation
    table = read_parts(storage, "features/eval-robust/jpeg75", columns=["source", "split", "perturbation"])
    assert set(table["perturbation"].to_pylist()) == {"jpeg(quality=75)"}
    assert set(table["split"].to_pylist()) == {"heldout"} and table.num_rows == 3 * len(SOURCES)
    record = storage.read_json(f"{storage.resolve('features/eval-robust/jpeg75')}/_extraction.json")
    assert record["perturb"] == [PerturbationSpec(name="jpeg", options={"quality": 75}).model_dump()]


def test_results_are_in_mlflow(evaluation) -> None:
    import mlflow

    _, job, result = evaluation
    run = mlflow.MlflowClient(job.mlflow.tracking_uri).get_run(result.mlflow_run_id)
    ours = result.scores[0]
    assert run.data.metrics["causalprint_ours_prototypes.clean.accuracy"] == pytest.approx(
        ours.conditions["clean"]["accuracy"]
    )
    assert "frank2020.open.clean.auroc" in run.data.metrics
    assert run.data.metrics["frank2020.fresh_shift_architecture_accuracy"] == pytest.approx(
        result.scores[2].fresh_shift_architecture_accuracy
    )


def test_rerun_reuses_baselines_and_extractions(evaluation, monkeypatch) -> None:
    from causalprint.evaluation import evaluate_job

    def no_training_rows(*args, **kwargs):
        raise AssertionError("a cached baseline should not read its training rows")

    storage, job, first = evaluation
    dones = [f.uri for f in storage.list_files(job.evaluate.baseline_cache) if f.uri.endswith("/_DONE.json")]
    assert dones and all("class_names" in storage.read_json(done) for done in dones)
    monkeypatch.setattr(evaluate_job, "load_attribution_data", no_training_rows)
    again = run_evaluation(job)
    for a, b in zip(first.scores, again.scores):
        assert a.conditions == b.conditions and a.open_set == b.open_set
    baselines = [(a, b) for a, b in zip(first.scores, again.scores) if a.train_seconds is not None]
    assert baselines and all(b.reused and not a.reused for a, b in baselines)  # loaded from the cache
    assert all(a.train_seconds == pytest.approx(b.train_seconds) for a, b in baselines)


def test_a_model_of_other_sources_is_refused(evaluation) -> None:
    _, job, _ = evaluation
    other = job.model_copy(update={"evaluate": job.evaluate.model_copy(update={"sources": SOURCES[:-1]})})
    with pytest.raises(ValueError, match="knows"):
        run_evaluation(other)


def test_perturbed_rows_differ_from_clean_rows(evaluation) -> None:
    storage, _, _ = evaluation
    clean = read_parts(storage, "features/eval", columns=["uri", "image.rgb"])
    jpeg = read_parts(storage, "features/eval-robust/jpeg75", columns=["uri", "image.rgb"])
    by_uri = dict(zip(clean["uri"].to_pylist(), np.asarray(clean["image.rgb"].to_pylist())))
    diffs = [
        np.abs(by_uri[u] - np.asarray(v)).mean() for u, v in zip(jpeg["uri"].to_pylist(), jpeg["image.rgb"].to_pylist())
    ]
    assert min(diffs) > 0


def test_condition_names_are_checked() -> None:
    with pytest.raises(ValueError):
        Condition(name="JPEG 75!")


def test_a_source_has_one_role() -> None:
    with pytest.raises(ValueError, match="'ldm-shift' is in both shift_sources and fresh_shift_sources"):
        EvaluateConfig(
            model="models:/m@champion",
            features="f",
            train_features=["f"],
            sources=SOURCES,
            shift_sources=SHIFT,
            fresh_shift_sources=["ldm-shift"],
        )
    with pytest.raises(ValueError, match="'vae-shift' is twice in shift_sources"):
        EvaluateConfig(
            model="models:/m@champion",
            features="f",
            train_features=["f"],
            sources=SOURCES,
            shift_sources=["vae-shift", "vae-shift"],
        )


def test_a_missing_shift_copy_is_an_error() -> None:
    from causalprint.evaluation.eval_rows import EvalRows
    from causalprint.evaluation.evaluate_job import _score_shift

    class AlwaysDcgan:
        name = "always-dcgan"

        def predict_architecture(self, inputs, arch_of):
            return np.array(["dcgan"] * len(inputs["c"]), dtype=object)

    rows = EvalRows(
        {"c": np.zeros((3, 1), np.float32)},
        np.array(["dcgan-shift"] * 2 + ["vae-shift"], dtype=object),
        np.array(["dcgan", "dcgan", "vae"], dtype=object),
        "ref",
    )
    by_source: dict = {}
    assert _score_shift(AlwaysDcgan(), rows, ["dcgan-shift", "vae-shift"], {}, by_source) == (pytest.approx(2 / 3), 3)
    assert by_source["dcgan-shift"]["rows"] == 2 and by_source["vae-shift"]["architecture_accuracy"] == 0.0
    with pytest.raises(ValueError, match="always-dcgan has no test rows of shift copy 'ldm-shift'"):
        _score_shift(AlwaysDcgan(), rows, ["dcgan-shift", "ldm-shift"], {}, {})


def test_a_baseline_cache_key_follows_its_training_rows_not_the_rest_of_the_zoo() -> None:
    from causalprint.baselines.registry import BASELINES
    from causalprint.evaluation.evaluate_job import _cache_key

    cls, spec = BASELINES.get("frank2020"), BaselineSpec(name="frank2020")

    def key(
        excluded: list[str], held_out: tuple[str, ...] = ("vae",), trained: tuple[str, ...] = tuple(SOURCES)
    ) -> str:
        data = DataConfig(
            features=["f"], columns=list(cls.columns), held_out_sources=list(held_out), excluded_sources=excluded
        )
        return _cache_key(cls, spec, data, "ref-1", list(trained))

    # A zoo that grew by a source nobody trains on: the same rows, the same trained baseline.
    assert key(["dcgan-shift"]) == key(["dcgan-shift", "stylegan-shift9"])
    # The classes named (as the evaluation names them) instead of the rest dropped: the same rows, the same key,
    # so baselines cached before either spelling are found.
    named = DataConfig(
        features=["f"],
        columns=list(cls.columns),
        held_out_sources=["vae"],
        class_sources=[s for s in SOURCES if s != "vae"],
    )
    assert _cache_key(cls, spec, named, "ref-1", list(SOURCES)) == key(["dcgan-shift"])
    assert key(["dcgan-shift"]) != key(["dcgan-shift"], held_out=("dcgan",))
    assert key(["dcgan-shift"]) != key(["dcgan-shift"], trained=tuple(SOURCES[:-1]))
    assert key(["dcgan-shift"]) != _cache_key(
        cls,
        BaselineSpec(name="frank2020", options={"epochs": 1}),
        DataConfig(
            features=["f"], columns=list(cls.columns), held_out_sources=["vae"], excluded_sources=["dcgan-shift"]
        ),
        "ref-1",
        SOURCES,
    )
