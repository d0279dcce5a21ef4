"""Read-only sources: the allow-list of places outside the storage root that a job may read images from.

A source is a local folder or an ``s3://bucket/prefix``, each with its own endpoint and credentials. It is read
through a :class:`~causalprint.storage.Storage` rooted at the source, so the storage root's containment rules
hold for it unchanged: ``..`` is refused outright, another bucket or prefix is outside, and a local path or a link
below it is read only when it resolves, symbolic links followed, inside the source's folder. Nothing is ever
written to a source.

:func:`open_source` is the boundary: a URI inside the platform's storage root is read there (as before); any
other URI must lie inside one listed source, and is refused otherwise with the allowed locations named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field, field_validator

from causalprint.storage.config import S3Access, StorageConfig
from causalprint.storage.store import Storage
from causalprint.storage.uri import OutsideStorageError, StorageError, contained_key, parse_root

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class OutsideSourcesError(OutsideStorageError):
    """A URI lies outside the storage root and outside every allowed source."""


class SourceConfig(S3Access):
    """One allowed location to read from: a local folder or ``s3://bucket/prefix`` and how to reach it."""

    name: str = Field(description="a short name, shown in refusals and in the report's folder name")
    uri: str = Field(description="local folder (symbolic links resolved when read) or s3://bucket/prefix")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"name {value!r}: use lower-case letters, digits, '-' and '_' (at most 63)")
        return value

    @field_validator("uri")
    @classmethod
    def _check_uri(cls, value: str) -> str:
        try:
            parse_root(value)
        except StorageError as exc:
            raise ValueError(f"uri: {exc}") from None
        return value

    @property
    def location(self) -> str:
        """The source's root as a full URI (local folders absolute)."""
        return parse_root(self.uri).uri

    def storage_config(self) -> StorageConfig:
        return StorageConfig(root=self.uri, **self.access())


def check_sources(sources: Sequence[SourceConfig]) -> None:
    """Refuse two sources of one name."""
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"sources: each name once; given more than once: {', '.join(twice)}")


@dataclass(frozen=True)
class OpenSource:
    """Where a URI is read from: the storage to read it with, its full URI, and a label for report names
    (the path below the storage root, or ``<source name>/<path below the source>``)."""

    storage: Storage
    uri: str
    label: str
    name: str | None = None  # the source's name; None for the platform's storage


def allowed_locations(storage: Storage, sources: Sequence[SourceConfig]) -> str:
    """The allow-list in words, for refusals."""
    listed = "; ".join(f"{s.name}: {s.location}" for s in sources) or "none configured (`sources` in the config)"
    return f"the storage root {storage.root}; sources: {listed}"


def open_source(storage: Storage, sources: Sequence[SourceConfig], uri: str) -> OpenSource:
    """The place to read ``uri`` from: the platform's ``storage`` when it lies inside its root (a root-relative
    path always does), else the first of ``sources`` that contains it.

    Raises :class:`OutsideSourcesError`, naming every allowed location, for a URI inside none of them (``..``
    included). Links are checked where they are read (:meth:`Storage.read_at_most`, the listing), against the
    resolved root of the source that holds them.
    """
    try:
        full = storage.resolve(uri)
        return OpenSource(storage, full, storage.relative(full))
    except OutsideStorageError as exc:
        inside_root = exc
    for source in sources:
        try:
            segments = contained_key(parse_root(source.uri), uri)
        except OutsideStorageError:
            continue
        reader = Storage(source.storage_config())
        return OpenSource(reader, reader.resolve(uri), "/".join((source.name, *segments)), source.name)
    raise OutsideSourcesError(
        f"{uri!r} is not in an allowed location ({inside_root}); allowed: {allowed_locations(storage, sources)}"
    )
