"""Typed configuration: strict pydantic models loaded from YAML, the environment and the command line.

Precedence, lowest first: model defaults < YAML file < environment (``CAUSALPRINT__A__B=value``) <
command-line overrides (``a.b=value``). Values from the environment and the command line are parsed as
YAML scalars, so ``3``, ``true`` and ``[1, 2]`` arrive typed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

ENV_PREFIX = "CAUSALPRINT__"

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


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
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
    """Read a YAML mapping; an empty file is an empty mapping."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
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
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def build_config(
    model: type[M],
    base: Mapping[str, Any] | None = None,
    *,
    yaml_path: str | Path | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> M:
    """Validate ``model`` from defaults, ``base`` (e.g. a preset), a YAML file, the environment and CLI
    overrides, each layer overriding the one before."""
    tree: dict[str, Any] = dict(base or {})
    sources = ["defaults" if not base else "defaults + preset"]
    if yaml_path is not None:
        tree = _deep_merge(tree, read_yaml(yaml_path))
        sources.append(str(yaml_path))
    env_tree = env_overrides(environ)
    if env_tree:
        tree = _deep_merge(tree, env_tree)
        sources.append("environment")
    cli_tree = cli_overrides(overrides)
    if cli_tree:
        tree = _deep_merge(tree, cli_tree)
        sources.append("command line")
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, " + ".join(sources))) from exc
