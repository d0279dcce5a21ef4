"""Typed configuration: strict pydantic models loaded from YAML, the environment and the command line.

Precedence, lowest first: model defaults < YAML file < environment (``CAUSALPRINT__A__B=value``) <
command-line overrides (``a.b=value``). Values from the environment and the command line are parsed as
YAML scalars, so ``3``, ``true`` and ``[1, 2]`` arrive typed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from causalprint.text import cut

ENV_PREFIX = "CAUSALPRINT__"
MAX_CONFIG_BYTES = 1024**2  # a job's YAML is a few kB; more is a wrong file (an image, /dev/zero)
MAX_ECHO = 200  # characters of an offending value shown in a message
MAX_ERRORS = 10  # validation errors named in one message

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config and schema: unknown keys are errors and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """A configuration could not be loaded; the message names each offending key."""


def check_one_role(roles: Mapping[str, Sequence[str]]) -> None:
    """Refuse a name listed twice in one role, or in two roles (``roles``: role -> names), naming both."""
    seen: dict[str, str] = {}
    for role, names in roles.items():
        for name in names:
            if name in seen:
                where = f"twice in {role}" if seen[name] == role else f"in both {seen[name]} and {role}"
                raise ValueError(f"{name!r} is {where}: each source has one role")
            seen[name] = role


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ConfigError(f"empty override key in {dotted!r}")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (``*name``): a few hundred bytes of nested aliases expand to gigabytes
    (a "billion laughs" document), so an alias is refused before anything is expanded. Anchors alone are harmless."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{cut(event.anchor, 40)}) are not accepted: write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def load_yaml_text(text: str) -> Any:
    """Parse YAML ``text`` with the safe loader, refusing aliases."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def _parse_scalar(text: str) -> Any:
    try:
        return load_yaml_text(text)
    except (yaml.YAMLError, ValueError):  # ValueError: an integer of over 4,300 digits
        return text


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping. Anything but a regular UTF-8 file of at most
    :data:`MAX_CONFIG_BYTES` holding YAML without aliases is refused with a :class:`ConfigError`."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise ConfigError(f"config file {path} is {what}: give a YAML file")
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is over {MAX_CONFIG_BYTES} bytes: not a job's YAML")
    try:
        data = load_yaml_text(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text, so not YAML (an image?)") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {cut(exc, 300)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def env_overrides(environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX) -> dict[str, Any]:
    """Overrides from variables such as ``CAUSALPRINT__STORAGE__ROOT=s3://bucket/x``."""
    environ = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            dotted = name[len(prefix) :].lower().replace("__", ".")
            _set_dotted(tree, dotted, _parse_scalar(raw))
    return tree


def cli_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """Overrides from ``key.sub=value`` strings."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} must look like key.sub=value")
        key, raw = pair.split("=", 1)
        _set_dotted(tree, key.strip(), _parse_scalar(raw))
    return tree


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    errors = exc.errors()
    if len(errors) > MAX_ERRORS:
        lines.append(f"  ({len(errors)} errors, the first {MAX_ERRORS} shown)")
    for err in errors[:MAX_ERRORS]:
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {cut(key, MAX_ECHO)}: unknown key")
        else:
            lines.append(f"  {cut(key, MAX_ECHO)}: {err['msg']} (got {cut(repr(err.get('input')), MAX_ECHO)})")
    return "\n".join(lines)


def config_layers(
    model: type[BaseModel],
    preset: Mapping[str, Any] | None = None,
    *,
    yaml_path: str | Path | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The layers of a job's config above the model's defaults, lowest first, each named: the preset, the
    ``--config`` file, the environment and the command line (``--set``). Empty layers are left out."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if preset:
        layers.append(("preset", dict(preset)))
    if yaml_path is not None:
        layers.append((str(yaml_path), read_yaml(yaml_path)))
    # A variable is meant for the jobs whose config has its section: CAUSALPRINT__ZOO__SEED, set for the zoo, must
    # not break the inventory (which has no zoo). A wrong key inside a section this job has is still refused.
    env_tree = {k: v for k, v in env_overrides(environ).items() if k in model.model_fields}
    if env_tree:
        layers.append(("environment", env_tree))
    cli_tree = cli_overrides(overrides)
    if cli_tree:
        layers.append(("command line", cli_tree))
    return layers


def validate_layers(model: type[M], layers: Sequence[tuple[str, Mapping[str, Any]]]) -> M:
    """Merge ``layers`` in order over the model's defaults and validate; errors name every layer."""
    tree: dict[str, Any] = {}
    for _, layer in layers:
        tree = _deep_merge(tree, layer)
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        source = " + ".join(["defaults", *(name for name, _ in layers)])
        raise ConfigError(format_validation_error(exc, source)) from exc


def build_config(
    model: type[M],
    base: Mapping[str, Any] | None = None,
    *,
    yaml_path: str | Path | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> M:
    """Validate ``model`` from defaults, ``base`` (a preset), a YAML file, the environment and CLI overrides,
    each layer overriding the one before."""
    layers = config_layers(model, base, yaml_path=yaml_path, overrides=overrides, environ=environ)
    return validate_layers(model, layers)


def _leaves(tree: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(tree, Mapping) and tree:
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, tree


def _set_in(tree: Mapping[str, Any], dotted: str) -> bool:
    """Whether ``tree`` sets ``dotted`` or a key above it (a section given whole)."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
        if not isinstance(node, Mapping):
            return True
    return True


def value_origins(config: BaseModel, layers: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, Any, str]]:
    """Every leaf of ``config`` as ``(dotted key, value, origin)``: the last layer that set it, or "default".
    Secrets show masked, as pydantic dumps them."""
    rows = []
    for key, value in _leaves(config.model_dump(mode="json")):
        origin = next((name for name, layer in reversed(layers) if _set_in(layer, key)), "default")
        rows.append((key, value, origin))
    return rows
