"""The job layer: every job has one shape, the CLI and jobs/run.py come from the catalog, every preset is a whole
config of its job, the layers of a config merge in one order, and every figure command in docs/results.md still
parses and builds its config."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from causalprint.cli import build_parser, main
from causalprint.config import ConfigError
from causalprint.jobs import job_config
from causalprint.jobs.catalog import JOBS
from causalprint.jobs.spec import find
from causalprint.presets import PRESET_ROOT, preset_names
from causalprint.runtime.job_config import JobConfig

REPO = Path(__file__).resolve().parents[2]
# Arguments a job needs beyond its preset, as a user would give them.
REQUIRED = {
    "scan": {"source": "inbox"},
    "report": {"prefix": "scans/x"},
    "inventory": {"prefix": "inbox"},
    "enrol": {"images": "new", "source": "my-gan", "family": "gan"},
    "anonymize": {"source": "inbox", "out": "anonymized/x"},
}


@pytest.mark.parametrize("spec", JOBS, ids=lambda s: s.command)
def test_every_job_module_has_the_one_shape(spec) -> None:
    module = spec.load()
    assert issubclass(module.CONFIG, JobConfig), "a job's config is built on JobConfig"
    assert callable(module.run) and callable(module.describe)
    assert spec.results == hasattr(module, "section"), "--results exactly where the job writes a section"
    assert module.__doc__ and module.__doc__.startswith(f"``causalprint {spec.command}"), (
        "a job module's docstring opens with its command"
    )


def test_the_cli_offers_exactly_the_catalog() -> None:
    parser = build_parser()
    for spec in JOBS:
        args = parser.parse_args([*spec.command.split(), *[v for v in _positional(spec)]])
        assert args.spec is spec
    out = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "run.py"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert all(spec.command.split()[0] in out for spec in JOBS)
    assert sorted(p.name for p in (REPO / "jobs").glob("*.py")) == ["run.py"], "one entry point for every job"


def _positional(spec) -> list[str]:
    given = REQUIRED.get(spec.command, {})
    words = [given[a.dest] for a in spec.arguments if not a.flags[0].startswith("-")]
    for a in spec.arguments:
        if a.flags[0].startswith("-") and a.options.get("required"):
            words += [a.flags[0], given[a.dest]]
    return words


@pytest.mark.parametrize("spec", [s for s in JOBS if s.preset_kind], ids=lambda s: s.command)
def test_every_preset_is_a_whole_config_of_its_job(spec) -> None:
    names = spec.preset_names()
    assert spec.default_preset in names
    given = {k: v for k, v in REQUIRED.get(spec.command, {}).items()}
    for name in names:
        assert isinstance(spec.build(name, given=given, environ={}), spec.config_class())
    if spec.command == "run":  # composed of its stages' presets of the same name
        stages = ("zoo", "reference", "extract", "train", "scan")
        common = set.intersection(*(set(preset_names(k)) for k in stages))
        # A scan preset with a source of its own is a benchmark chain's stage: the main job scans its zoo.
        assert "core" in common and "core" not in names and {"demo", "tiny"} <= set(names)
        assert set(names) < common
        assert not (PRESET_ROOT / spec.preset_kind).exists()


def test_layers_merge_in_one_order_and_config_show_names_each_origin(tmp_path, capsys) -> None:
    file = tmp_path / "scan.yaml"
    file.write_text("scan: {batch_size: 7, model: 'models:/from-file@champion'}\nstorage: {root: from-file}\n")
    environ = {"CAUSALPRINT__STORAGE__ROOT": "from-env", "CAUSALPRINT__SCAN__BATCH_SIZE": "9"}
    spec = find("scan", JOBS)
    origins = {
        k: (v, o) for k, v, o in spec.origins("tiny", str(file), {"source": "inbox"}, ["scan.batch_size=11"], environ)
    }
    assert origins["scan.batch_size"] == (11, "command line")  # --set beats the environment, file and preset
    assert origins["storage.root"] == ("from-env", "environment")  # the environment beats the file
    assert origins["scan.model"] == ("models:/from-file@champion", str(file))  # the file beats the preset
    assert origins["scan.reference"] == ("models/reference/tiny", "preset scan/tiny")
    assert origins["scan.source"] == ("inbox", "command line")
    assert origins["ray.address"] == (None, "default")
    # A job's own argument is on the command line, and --set, later on it, still wins.
    config = job_config(
        "scan",
        "tiny",
        given={"model": "models:/arg@champion"},
        overrides=["scan.model=models:/set@champion", "scan.source=x"],
        environ={},
    )
    assert config.scan.model == "models:/set@champion"

    for words in (["train"], ["zoo", "build"], ["run"]):
        assert main(["config", "show", *words, "--set", "storage.root=shown"]) == 0
        out = capsys.readouterr().out
        assert re.search(r'^storage\.root +"shown" +\(command line\)$', out, re.M), out[:400]
        assert "(preset " in out and "(default)" in out


def test_config_show_masks_secrets(capsys) -> None:
    assert (
        main(
            [
                "config",
                "show",
                "inventory",
                "--set",
                "prefix=x",
                "--set",
                "storage.root=s3://b/p",
                "--set",
                "storage.secret_access_key=hunter2",
                "--set",
                "storage.access_key_id=me",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "hunter2" not in out and "storage.secret_access_key" in out


def test_an_unknown_job_is_named() -> None:
    with pytest.raises(ConfigError, match="no job 'nope'; jobs: run, zoo build"):
        find("nope", JOBS)


def test_the_main_job_shares_its_platform_with_the_training_stage() -> None:
    config = job_config("run", "tiny", overrides=["storage.root=/tmp/elsewhere"], environ={})
    assert config.train.storage == config.storage and config.train.mlflow == config.mlflow
    with pytest.raises(ConfigError, match="set storage once, at the top"):
        job_config("run", "tiny", overrides=["train.storage.root=/tmp/other"], environ={})


def _figure_commands() -> list[str]:
    text = (REPO / "docs" / "results.md").read_text()
    return sorted(set(re.findall(r"^Command: `([^`]*)`", text, re.M)))


@pytest.mark.parametrize("command", _figure_commands())
def test_every_figure_command_in_the_results_still_parses_and_builds_its_config(command: str) -> None:
    words = shlex.split(command)
    words = words[1:] if words[0] == "causalprint" else words[2:]  # causalprint ... or python jobs/run.py ...
    args = build_parser().parse_args(words)
    spec = args.spec
    given = {a.dest: getattr(args, a.dest) for a in spec.arguments if a.key}
    assert isinstance(
        spec.build(getattr(args, "preset", None), args.config, given, args.overrides, {}), spec.config_class()
    )
