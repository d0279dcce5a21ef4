"""``causalprint bench run``: a chain of jobs that resumes after an interruption at any stage, runs each stage's
work once, and writes every stage's section."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from causalprint.config import ConfigError
from causalprint.jobs import bench_run
from causalprint.jobs.catalog import JOBS
from causalprint.jobs.spec import find, run_job
from causalprint.presets import PRESET_ROOT, preset_hash
from causalprint.storage import Storage

SPEC = find("bench run", JOBS)


class Interrupted(Exception):
    """Stands for a kill: the stage is left without its record."""


def _config(root: Path, preset: str = "tiny") -> bench_run.BenchRunConfig:
    config = SPEC.build(preset, overrides=[f"storage.root={root}"])
    assert isinstance(config, bench_run.BenchRunConfig)
    return config


def _count_and_interrupt(monkeypatch, config, *, before: str | None = None, after: str | None = None) -> dict:
    """Wrap every stage job's ``run``: count the calls that did the work, and raise :class:`Interrupted` before
    the stage named ``before`` starts or after the one named ``after`` has done its work."""
    calls: dict[str, int] = {}
    for stage in config.bench.stages:
        module = importlib.import_module(find(stage.job, JOBS).load().__name__)
        real = module.run

        def wrapped(job, *, _real=real, _stage=stage.name):
            if _stage == before:
                raise Interrupted(_stage)
            result = _real(job)
            calls[_stage] = calls.get(_stage, 0) + 1
            if _stage == after:
                raise Interrupted(_stage)
            return result

        monkeypatch.setattr(module, "run", wrapped)
    return calls


@pytest.mark.slow
def test_the_chain_resumes_after_an_interruption_at_every_stage(tmp_path, monkeypatch, ray_session) -> None:
    root = tmp_path / "store"
    config = _config(root)
    names = [stage.name for stage in config.bench.stages]
    done: dict[str, int] = {}
    # Sitting k is killed as stage k starts: it runs stage k - 1, the one the previous sitting stopped at.
    for k, name in enumerate(names):
        with monkeypatch.context() as patch:
            calls = _count_and_interrupt(patch, config, before=name)
            with pytest.raises(Interrupted):
                bench_run.run(config)
        for stage, n in calls.items():
            done[stage] = done.get(stage, 0) + n
        assert list(done) == names[:k], f"sitting {k} ran {calls}"
    # The last sitting is killed after the scan did its work and before its record: the scan reruns and resumes.
    with monkeypatch.context() as patch:
        calls = _count_and_interrupt(patch, config, after=names[-1])
        with pytest.raises(Interrupted):
            bench_run.run(config)
    assert calls == {names[-1]: 1}
    with monkeypatch.context() as patch:
        calls = _count_and_interrupt(patch, config)
        report = bench_run.run(config)
    assert calls == {names[-1]: 1}, "only the scan, whose record the kill prevented, runs again"
    assert [s["name"] for s in report["stages"]] == names
    assert [s["resumed"] for s in report["stages"]] == [True] * (len(names) - 1) + [False]
    assert report["sittings"] == len(names) + 2

    # Every image of the zoo is in the scan's report exactly once, after two scans of it.
    storage = Storage(config.storage)
    images = [f.uri for f in storage.list_files(storage.uri("zoo/tiny/images"), (".png",))]
    parts = storage.list_files(storage.uri("scans/tiny"), (".parquet",))
    uris = [uri for part in parts for uri in storage.read_parquet(part.uri).column("uri").to_pylist()]
    assert len(images) > 0 and sorted(uris) == sorted(images)

    # Once every stage is recorded, a rerun runs nothing.
    with monkeypatch.context() as patch:
        calls = _count_and_interrupt(patch, config)
        again = bench_run.run(config)
    assert calls == {} and all(s["resumed"] for s in again["stages"])

    # --results writes the time table and each stage's section, each recording the chain's preset and its own.
    results = tmp_path / "results.md"
    code = run_job(SPEC, config, preset="tiny", results=str(results), echo=lambda _: None)
    text = results.read_text()
    assert code == 0
    chain = preset_hash(PRESET_ROOT / "bench_run" / "tiny.yaml")
    assert "<!-- BEGIN bench-tiny -->" in text and f"`bench_run/tiny` (sha256 `{chain}`)" in text
    zoo = preset_hash(PRESET_ROOT / "zoo" / "tiny.yaml")
    zoo_section = text.split("<!-- BEGIN zoo-tiny -->")[1].split("<!-- END zoo-tiny -->")[0]
    assert f"`zoo/tiny` (sha256 `{zoo}`)" in zoo_section and "`train/tiny`" not in zoo_section


def test_a_changed_stage_config_has_another_hash_so_its_record_no_longer_matches(tmp_path) -> None:
    config = _config(tmp_path / "store")
    first = bench_run.stage_config(config, config.bench.stages[0])
    stage = config.bench.stages[0].model_copy(update={"set": {"zoo.seed": 7}})
    changed = bench_run.stage_config(config, stage)
    assert changed.zoo.seed == 7 and bench_run.config_hash(changed) != bench_run.config_hash(first)
    # The chain's storage wins over the stage preset's; the stage keeps its MLflow experiment.
    assert first.storage == config.storage


def test_every_stage_is_validated_before_any_runs(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no job 'zoo bild'"):
        bench_run.run(
            SPEC.build(
                "tiny", overrides=[f"storage.root={tmp_path}", 'bench.stages=[{"job": "zoo bild", "preset": "tiny"}]']
            )
        )
    assert not (tmp_path / "bench").exists(), "nothing was started"


def test_the_bench_presets_name_real_jobs_and_presets() -> None:
    for name in SPEC.preset_names():
        config = SPEC.build(name)
        for stage in config.bench.stages:
            bench_run.stage_config(config, stage)  # raises on an unknown job, preset or key
