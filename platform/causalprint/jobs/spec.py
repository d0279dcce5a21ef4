"""The shape of a job, and how the CLI and ``jobs/run.py`` run one.

A job is one module of :mod:`causalprint.jobs` that defines:

- ``CONFIG``: its config class, built on :class:`~causalprint.runtime.job_config.JobConfig`;
- ``run(config) -> result``: the work, returning a typed result;
- ``describe(result) -> str``: the result for the terminal;
- optionally ``section(config, result, preset, docs_dir) -> Section | list[Section] | None``: what
  ``--results`` writes into ``docs/results.md`` (no ``section``: the job writes no figures);
- optionally ``preset(name)`` and ``preset_names()``, where its presets are composed rather than read from
  ``presets/<kind>/<name>.yaml`` (the main job's are its stages' presets);
- optionally ``exit_code(result) -> int`` (default 0) and ``epilogue(config, result, options) -> str`` (output
  after the description that only the command-line options ask for).

:data:`causalprint.jobs.catalog.JOBS` lists them with their command words and arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from causalprint.config import ConfigError, config_layers, validate_layers, value_origins
from causalprint.runtime.job_config import JobConfig


@dataclass(frozen=True)
class Argument:
    """A command-line argument of a job. With ``key`` it sets that config key (a ``--set`` of its own); without,
    it only changes what is printed and reaches ``epilogue`` as an option."""

    flags: tuple[str, ...]
    help: str
    key: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # argparse keywords: required, choices, type, ...

    @property
    def dest(self) -> str:
        return self.options.get("dest") or self.flags[-1].lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Section:
    """A section of the results document: its key (stable, so a rerun replaces it), title and Markdown body."""

    key: str
    title: str
    body: str
    presets: Mapping[str, str] | None = None  # "<kind>/<name>" -> hash it records; None: every preset read


@dataclass(frozen=True)
class JobSpec:
    """One job: its command words, its module, its presets and its arguments."""

    command: str  # "scan", "zoo build"
    module: str  # the job module under causalprint.jobs
    help: str
    preset_kind: str | None = None  # presets/<kind>/*.yaml; None: the job has no presets
    default_preset: str = "tiny"
    arguments: tuple[Argument, ...] = ()
    results: bool = False  # takes --results docs/results.md

    def load(self) -> ModuleType:
        return importlib.import_module(f"causalprint.jobs.{self.module}")

    def config_class(self) -> type[JobConfig]:
        return self.load().CONFIG

    def layers(
        self,
        preset: str | None,
        config_file: str | None,
        given: Mapping[str, Any],
        overrides: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """The config's layers, lowest first: preset, ``--config`` file, environment, the job's own arguments and
        ``--set`` (both "command line")."""
        preset_tree = self.preset(preset) if self.preset_kind and preset else None
        layers = config_layers(
            self.config_class(), preset_tree, yaml_path=config_file, overrides=overrides, environ=environ
        )
        if preset_tree is not None:
            layers[0] = (f"preset {self.preset_kind}/{preset}", layers[0][1])
        argued = _tree({key: value for dest, value in given.items() if value is not None and (key := self._key(dest))})
        if argued:
            # The job's own arguments sit with --set, which still wins (it comes last on the line).
            at = next((i for i, (name, _) in enumerate(layers) if name == "command line"), len(layers))
            layers.insert(at, ("command line", argued))
        return layers

    def build(
        self,
        preset: str | None,
        config_file: str | None = None,
        given: Mapping[str, Any] | None = None,
        overrides: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> JobConfig:
        return validate_layers(self.config_class(), self.layers(preset, config_file, given or {}, overrides, environ))

    def origins(
        self,
        preset: str | None,
        config_file: str | None = None,
        given: Mapping[str, Any] | None = None,
        overrides: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> list[tuple[str, Any, str]]:
        """Every value of the merged config with the layer it came from (``causalprint config show``)."""
        layers = self.layers(preset, config_file, given or {}, overrides, environ)
        return value_origins(validate_layers(self.config_class(), layers), layers)

    def preset(self, name: str) -> dict[str, Any]:
        """Preset ``name``: a whole config of this job (a job module may compose it, as the main job does)."""
        from causalprint.presets import load_preset

        if self._composed():
            return self.load().preset(name)
        return load_preset(self.preset_kind or "", name)

    def preset_names(self) -> list[str]:
        from causalprint.presets import preset_names

        return self.load().preset_names() if self._composed() else preset_names(self.preset_kind or "")

    def _composed(self) -> bool:
        """Whether the job composes its presets (no folder ``presets/<kind>``); only then is its module
        imported here, so that ``--help`` stays quick."""
        from causalprint.presets import PRESET_ROOT

        return not (PRESET_ROOT / (self.preset_kind or "")).is_dir()

    def _key(self, dest: str) -> str | None:
        return next((a.key for a in self.arguments if a.dest == dest), None)


def _tree(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = tree
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def run_job(
    spec: JobSpec,
    config: JobConfig,
    *,
    preset: str | None = None,
    results: str | None = None,
    options: Mapping[str, Any] | None = None,
    echo: Any = print,
) -> int:
    """Run ``spec`` with ``config``: print its description, write its section into ``results`` (a Markdown
    file) when asked, print the epilogue the options ask for; returns the exit code."""
    module = spec.load()
    result = module.run(config)
    description = module.describe(result)
    if description:  # a job whose output is its epilogue (report) prints nothing before it
        echo(description)
    if results:
        if not hasattr(module, "section"):
            raise ConfigError(f"`causalprint {spec.command}` writes no figures: drop --results")
        from causalprint.results_doc import update_section

        written = module.section(config, result, preset or "", Path(results).resolve().parent)
        for section in [] if written is None else written if isinstance(written, list) else [written]:
            update_section(results, section.key, section.title, section.body, presets=section.presets)
    if hasattr(module, "epilogue"):
        text = module.epilogue(config, result, dict(options or {}))
        if text:
            echo(text)
    return int(module.exit_code(result)) if hasattr(module, "exit_code") else 0


def doc_link(docs_dir: Path, path: str | Path) -> str:
    """``path`` relative to the results file's folder, so that a Markdown image resolves on GitHub."""
    import os

    return os.path.relpath(os.path.abspath(path), docs_dir)


def find(command: Sequence[str] | str, jobs: Sequence[JobSpec]) -> JobSpec:
    words = command if isinstance(command, str) else " ".join(command)
    for spec in jobs:
        if spec.command == words:
            return spec
    raise ConfigError(f"no job {words!r}; jobs: {', '.join(s.command for s in jobs)}")
