"""Named configuration presets, one YAML file per job kind and name: ``presets/<kind>/<name>.yaml``.

``tiny`` presets run in seconds (the tests); ``demo`` presets are the main job's (``causalprint run``: a zoo of six
sources and an attributor that tells them apart, in minutes); ``bench`` presets produce the published figures.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from causalprint.config import ConfigError, read_yaml
from causalprint.text import cut

PRESET_ROOT = Path(__file__).parent
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a name, never a path
# Every preset this process has read, "<kind>/<name>" -> hash of the bytes read, in the order they were read:
# what a results section records as the presets that wrote it (causalprint.results_doc).
_READ: dict[str, str] = {}


def preset_names(kind: str) -> list[str]:
    return sorted(p.stem for p in (PRESET_ROOT / kind).glob("*.yaml"))


def load_preset(kind: str, name: str) -> dict[str, Any]:
    """The raw mapping of preset ``name`` of ``kind``; an unknown name lists the known ones."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"preset {cut(name, 100)!r} is not a preset name (letters, digits, - and _); "
            f"known {kind} presets: {', '.join(preset_names(kind))}; give a file with --config"
        )
    path = PRESET_ROOT / kind / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown {kind} preset {name!r}; known: {', '.join(preset_names(kind))}")
    _READ[f"{kind}/{name}"] = preset_hash(path)
    return read_yaml(path)


def preset_hash(path: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of a preset file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def presets_read() -> dict[str, str]:
    """The presets read since the last :func:`forget_presets_read`: ``{"<kind>/<name>": hash}``."""
    return dict(_READ)


def forget_presets_read() -> None:
    """Start a new record of presets read (each command of the CLI starts one)."""
    _READ.clear()
