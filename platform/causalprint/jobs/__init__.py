"""The job layer: one module per job (config, ``run``, ``describe``), listed in :mod:`causalprint.jobs.catalog`.
The shape of a job module is in :mod:`causalprint.jobs.spec`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from causalprint.runtime.job_config import JobConfig


def job_config(
    command: str,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    given: Mapping[str, Any] | None = None,
) -> JobConfig:
    """The config of job ``command`` ("scan", "zoo build") as the CLI builds it: defaults, preset, file,
    environment, the job's arguments (``given``: argument name -> value) and ``--set`` overrides."""
    from causalprint.jobs.catalog import JOBS
    from causalprint.jobs.spec import find

    return find(command, JOBS).build(
        preset, None if config_file is None else str(config_file), given, overrides, environ
    )
