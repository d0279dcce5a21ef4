"""The attribution baselines, by name: ``create_baseline("frank2020", epochs=10)``, ``load_baseline(folder)``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from causalprint.baselines.base import CONFIG_NAME, Baseline
from causalprint.registry import Registry

__all__ = ["BASELINES", "create_baseline", "load_baseline"]

BASELINES: Registry[type[Baseline]] = Registry(
    "baseline",
    {
        "yu2019": "causalprint.baselines.yu2019:Yu2019",
        "frank2020": "causalprint.baselines.frank2020:Frank2020",
        "dire": "causalprint.baselines.dire:Dire",
        "aeroblade": "causalprint.baselines.aeroblade:Aeroblade",
        "univfd": "causalprint.baselines.univfd:UnivFD",
    },
)


def create_baseline(name: str, *, device: str | torch.device | None = None, **options: Any) -> Baseline:
    """An unfitted baseline ``name`` with ``options`` over its defaults; an unknown name raises
    :class:`~causalprint.registry.UnknownPluginError` (listing the known ones), an unknown or invalid option
    :class:`~causalprint.config.ConfigError`."""
    return BASELINES.get(name)(device=device, **options)


def load_baseline(directory: str | Path, device: str | torch.device | None = None) -> Baseline:
    """The fitted baseline saved in ``directory`` by ``save_pretrained``, whichever it is."""
    name = json.loads((Path(directory) / CONFIG_NAME).read_text()).get("baseline")
    if not isinstance(name, str):
        raise ValueError(f"{Path(directory) / CONFIG_NAME} names no baseline")
    return BASELINES.get(name).from_pretrained(directory, device=device)
