"""A small registry for pluggable families (generators, residual modes, feature spaces, baselines).

Entries are registered by explicit name as ``"module:attribute"`` strings and imported on first use, so that
listing a registry imports nothing heavy and adding a plugin is one small module plus one line.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownPluginError(KeyError):
    """Raised for a name that is not registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0])


class Registry(Generic[T]):
    """Named, lazily imported plugins of one family."""

    def __init__(self, family: str, entries: Mapping[str, str] | None = None) -> None:
        self.family = family
        self._targets: dict[str, str] = dict(entries or {})

    def register(self, name: str, target: str) -> None:
        """Add ``name`` -> ``"package.module:Attribute"``; names are unique."""
        if name in self._targets and self._targets[name] != target:
            raise ValueError(f"{self.family} {name!r} is already registered to {self._targets[name]}")
        self._targets[name] = target

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, sorted."""
        return sorted(n for n in self._targets if fnmatch.fnmatchcase(n, pattern))

    def get(self, name: str) -> T:
        """The registered object for ``name``."""
        try:
            target = self._targets[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownPluginError(f"unknown {self.family} {name!r}; known: {known}") from None
        module_name, _, attr = target.partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def __contains__(self, name: object) -> bool:
        return name in self._targets
