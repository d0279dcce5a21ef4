"""Config loading: layers, precedence and error messages that name the key."""

from __future__ import annotations

import pytest

from causalprint.attribution.dataset import DataConfig
from causalprint.config import ConfigError, build_config
from causalprint.jobs import job_config
from causalprint.jobs.zoo_build import ZooJobConfig
from causalprint.presets import load_preset, preset_names


def test_presets_validate_and_share_sources() -> None:
    tiny, bench = job_config("zoo build", "tiny", environ={}), job_config("zoo build", "bench", environ={})
    # The demo's tiny zoo is a small copy of the bench: its sources, less the bench's extra instances of an
    # architecture, and every architecture of the bench.
    assert set(tiny.zoo.sources) <= set(bench.zoo.sources)
    assert {g.arch for g in tiny.zoo.generators} == {g.arch for g in bench.zoo.generators}
    assert len(bench.zoo.generators) >= 9 + 4
    assert bench.zoo.image_size >= 32 and min(bench.zoo.splits.values()) >= 1000


@pytest.mark.parametrize("train", [n for n in preset_names("train") if n.startswith("bench")])
def test_bench_train_presets_name_the_evaluations_classes_and_never_train_on_a_shift_copy(train: str) -> None:
    zoo = job_config("zoo build", "bench", environ={}).zoo
    data = DataConfig(**load_preset("train", train)["data"])  # its validator refuses a source in two roles
    evaluate = load_preset("evaluate", "bench")["evaluate"]
    plasma = {g.name for g in zoo.generators if g.content_group == "plasma"}
    # Named classes: a source added to the zoo trains nothing until a preset names it.
    assert data.class_sources is not None and not data.excluded_sources
    assert set(data.named_sources) <= set(zoo.sources)
    # The classes and unknowns are the evaluation's, whichever of them a preset holds out.
    assert set(data.class_sources) | set(data.held_out_sources) == set(evaluate["sources"])
    assert not plasma & set(data.named_sources)
    assert set(evaluate["shift_sources"]) | set(evaluate["fresh_shift_sources"]) <= plasma


def test_bench_third_content_holds_every_shift_architecture() -> None:
    # Its roles (never a class, never scored) are the role tests' business; this is what it is for.
    zoo = job_config("zoo build", "bench", environ={}).zoo
    third = {g.arch for g in zoo.generators if zoo.is_generator_only(g.content_group)}
    assert third == {g.arch for g in zoo.generators if g.content_group == "plasma"}


def test_bench_extractions_cover_what_training_and_evaluation_read() -> None:
    zoo = job_config("zoo build", "bench", environ={}).zoo
    evaluate = load_preset("evaluate", "bench")["evaluate"]
    trained_on = {"real"} | {g.name for g in zoo.generators if g.content_group != "plasma"}
    # One perturbed copy of each row training may read; none of a shift copy.
    assert set(load_preset("extract", "bench-augment")["extract"]["sources"]) == trained_on
    scored = set(evaluate["sources"]) | set(evaluate["shift_sources"]) | set(evaluate["fresh_shift_sources"])
    assert set(load_preset("extract", "bench-dire")["extract"]["sources"]) == scored


@pytest.mark.parametrize("name", preset_names("study"))
def test_a_study_scores_no_fresh_copy_and_each_variant_gives_every_source_one_role(name: str) -> None:
    from causalprint.attribution.source_study import StudyJobConfig, variant_job

    job = StudyJobConfig(**load_preset("study", name))
    zoo = job_config("zoo build", "bench", environ={}).zoo
    evaluate = load_preset("evaluate", "bench")["evaluate"]
    not_plasma = {g.name for g in zoo.generators if g.content_group != "plasma"}
    assert set(job.study.pool) <= not_plasma - set(evaluate["sources"])
    # The round left for the evaluation's fresh column is never what a choice looks at.
    assert set(job.study.shift_sources) <= set(evaluate["shift_sources"])
    for variant in job.study.variants:
        data = variant_job(job, variant).data  # a TrainJobConfig: one role per source, validated
        assert set(data.architecture_only_sources) == set(job.study.sources_of(variant))
        assert set(data.named_sources) - set(data.architecture_only_sources) == set(evaluate["sources"])


@pytest.mark.parametrize(
    ("preset", "study", "variant"),
    [
        ("bench-noise", "bench-strong", "i"),
        ("bench-noise", "bench-random", "i"),
        ("bench-noise", "bench-content", "i"),
        ("bench-noise-openset", "bench-strong", "i"),
        ("bench-noise-c-openset", "bench-layer", "c"),
    ],
)
def test_the_noise_presets_train_the_sets_their_study_names(preset: str, study: str, variant: str) -> None:
    from causalprint.attribution.source_study import StudyJobConfig, variant_job

    job = StudyJobConfig(**load_preset("study", study))
    data, chosen = load_preset("train", preset)["data"], variant_job(job, variant).data
    assert data["architecture_only_sources"] == chosen.architecture_only_sources
    assert data["columns"] == chosen.columns
    # An open-set preset holds some of the study's classes out.
    assert set(data["class_sources"]) | set(data.get("held_out_sources", [])) == set(chosen.class_sources)


def test_yaml_env_and_cli_layers_in_order(tmp_path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("storage: {root: /from/yaml}\nzoo: {seed: 5}\n")
    env = {"CAUSALPRINT__ZOO__SEED": "7", "CAUSALPRINT__STORAGE__ROOT": "/from/env"}
    cfg = job_config("zoo build", "tiny", path, ["zoo.seed=9"], environ=env)
    assert cfg.storage.root == "/from/env"
    assert cfg.zoo.seed == 9
    assert job_config("zoo build", "tiny", path, environ={}).zoo.seed == 5


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ("zoo.bogus=1", "zoo.bogus", "unknown key"),
        ("zoo.image_size=big", "zoo.image_size", "integer"),
        ("zoo.image_size=24", "zoo", "power of two"),
        ("zoo.train_crops_per_group=0", "zoo.train_crops_per_group", "greater than or equal"),
        ("storage.root=http://example.com/x", "storage.root", "scheme"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        job_config("zoo build", "tiny", overrides=[override], environ={})
    message = str(err.value)
    assert key in message and words in message


def test_generator_errors_name_the_generator() -> None:
    zoo = load_preset("zoo", "tiny")["zoo"]
    zoo["generators"][0]["arch"] = "nope"
    with pytest.raises(ConfigError, match=r"generator dcgan: unknown arch 'nope'"):
        build_config(ZooJobConfig, {"zoo": zoo}, environ={})
    zoo = load_preset("zoo", "tiny")["zoo"]
    zoo["generators"][1]["name"] = "dcgan"
    with pytest.raises(ConfigError, match="repeated"):
        build_config(ZooJobConfig, {"zoo": zoo}, environ={})


def test_unknown_preset_lists_known() -> None:
    with pytest.raises(ValueError, match="known: bench, core, demo, tiles64, tiny"):
        load_preset("zoo", "huge")


def test_override_syntax_error() -> None:
    with pytest.raises(ConfigError, match="key.sub=value"):
        job_config("zoo build", "tiny", overrides=["noequals"], environ={})


def test_a_variable_for_another_job_is_left_to_it() -> None:
    from causalprint.jobs.inventory import InventoryJobConfig

    env = {"CAUSALPRINT__ZOO__SEED": "7", "CAUSALPRINT__STORAGE__ROOT": "/from/env"}
    cfg = build_config(InventoryJobConfig, {"prefix": "x"}, environ=env)
    assert cfg.storage.root == "/from/env"
    with pytest.raises(ConfigError, match="storage.nope: unknown key"):
        build_config(InventoryJobConfig, {"prefix": "x"}, environ={"CAUSALPRINT__STORAGE__NOPE": "1"})
