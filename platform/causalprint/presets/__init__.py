"""Named configuration presets, one YAML file per job kind and name: ``presets/<kind>/<name>.yaml``.

``tiny`` presets run in seconds (tests, the README demo); ``bench`` presets produce the published figures.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from causalprint.config import ConfigError, read_yaml
from causalprint.text import cut

PRESET_ROOT = Path(__file__).parent
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a name, never a path


def preset_names(kind: str) -> list[str]:
    return sorted(p.stem for p in (PRESET_ROOT / kind).glob("*.yaml"))


def load_preset(kind: str, name: str) -> dict[str, Any]:
    """The raw mapping of preset ``name`` of ``kind``; an unknown name lists the known ones."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"preset {cut(name, 100)!r} is not a preset name (letters, digits, - and _); "
                          f"known {kind} presets: {', '.join(preset_names(kind))}; give a file with --config")
    path = PRESET_ROOT / kind / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown {kind} preset {name!r}; known: {', '.join(preset_names(kind))}")
    return read_yaml(path)
