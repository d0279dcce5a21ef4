"""Parsing of storage roots and URIs, and the containment check that keeps every URI inside the root.

Keys are handled as lists of path segments: empty and ``.`` segments collapse, and any ``..`` segment is
refused outright rather than resolved, so no spelling of a URI can climb out of the root.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote

# At least two characters, so that a Windows drive letter ("C:/x") never reads as a scheme.
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
# Loose on purpose: S3-compatible stores differ in what they allow; this only rules out nonsense.
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,254}$")

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


class StorageError(ValueError):
    """A storage URI or operation is invalid."""


class OutsideStorageError(StorageError):
    """A URI points outside the configured storage root."""


class NotARegularFileError(StorageError):
    """A path names a FIFO, socket or device: never opened."""


@dataclass(frozen=True)
class Root:
    """A parsed storage root: ``bucket``/``prefix`` for S3, ``path`` (absolute) for a local root."""

    scheme: str  # "s3" or "file"
    bucket: str = ""
    prefix: tuple[str, ...] = ()
    path: str = ""

    @property
    def uri(self) -> str:
        if self.scheme == "s3":
            return "/".join(("s3://" + self.bucket, *self.prefix))
        return self.path


def scheme_of(uri: str) -> str | None:
    """The lower-cased scheme of ``uri`` (``s3``, ``file``, ``http``...), or None for a plain path."""
    match = _SCHEME_RE.match(uri)
    return match.group(1).lower() if match else None


def split_key(key: str, *, what: str = "path") -> tuple[str, ...]:
    """Split a ``/``-separated key into segments; ``..`` raises :class:`OutsideStorageError`."""
    if "\x00" in key:
        raise StorageError(f"{what} {key!r} contains a NUL character")
    segments = tuple(s for s in key.split("/") if s not in ("", "."))
    if ".." in segments:
        raise OutsideStorageError(f"{what} {key!r} contains '..', which could leave the storage root")
    return segments


def is_temp_name(name: str) -> bool:
    """True for the temporary files that atomic local writes leave while in flight."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return base.startswith(TEMP_PREFIX) and base.endswith(TEMP_SUFFIX)


def _strip_scheme(uri: str, scheme: str) -> str:
    rest = uri[len(scheme) + 1 :]
    if not rest.startswith("//"):
        raise StorageError(f"malformed URI {uri!r}: expected {scheme}://...")
    return rest[2:]


def parse_s3(uri: str) -> tuple[str, tuple[str, ...]]:
    """``s3://bucket/a/b`` -> ``("bucket", ("a", "b"))``."""
    rest = _strip_scheme(uri, "s3")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"S3 URI {uri!r} has no bucket")
    if not _BUCKET_RE.match(bucket):
        raise StorageError(f"S3 URI {uri!r} has an invalid bucket name {bucket!r}")
    return bucket, split_key(key, what="S3 URI")


def file_uri_path(uri: str) -> str:
    """``file:///a/b`` (or ``file://localhost/a/b``) -> ``/a/b``, percent-decoded."""
    rest = _strip_scheme(uri, "file")
    host, sep, path = rest.partition("/")
    if host not in ("", "localhost"):
        raise StorageError(f"file URI {uri!r} names a remote host {host!r}")
    return unquote(sep + path)


def parse_root(root: str) -> Root:
    """Parse a configured root. Local roots become absolute: ``~`` expanded, relative ones against the cwd."""
    if not root or not root.strip():
        raise StorageError("root must not be empty")
    scheme = scheme_of(root)
    if scheme == "s3":
        bucket, prefix = parse_s3(root)
        return Root("s3", bucket=bucket, prefix=prefix)
    if scheme == "file":
        path = file_uri_path(root)
        if not path.startswith("/"):
            raise StorageError(f"file URI {root!r} must hold an absolute path")
    elif scheme is None:
        path = os.path.expanduser(root)
    else:
        raise StorageError(f"unsupported scheme {scheme!r} in {root!r}: use a local path or s3://bucket/prefix")
    if "\x00" in path:
        raise StorageError(f"path {root!r} contains a NUL character")
    return Root("file", path=os.path.abspath(path))


def join_local(root_path: str, segments: tuple[str, ...]) -> str:
    """Join key segments under an absolute local root (which may be ``/``)."""
    if not segments:
        return root_path
    return root_path.rstrip("/") + "/" + "/".join(segments)


def contained_key(root: Root, uri: str) -> tuple[str, ...]:
    """The root-relative key segments of ``uri`` (a full URI or a root-relative path).

    Raises :class:`OutsideStorageError` when ``uri`` would land outside ``root``: ``..``, another bucket or
    prefix, another scheme, or an absolute local path elsewhere.
    """
    uri = os.fspath(uri)
    if not isinstance(uri, str):
        raise StorageError(f"expected a str URI, got {type(uri).__name__}")
    scheme = scheme_of(uri)
    if scheme is None and not uri.startswith("/"):
        return split_key(uri)
    if scheme == "s3":
        if root.scheme != "s3":
            raise OutsideStorageError(f"{uri!r} is on S3 but the storage root is local ({root.uri})")
        bucket, segments = parse_s3(uri)
        if bucket != root.bucket:
            raise OutsideStorageError(f"{uri!r} is in bucket {bucket!r}, outside the storage root {root.uri}")
        return _under(root.prefix, segments, uri, root)
    if scheme == "file" or scheme is None:
        if root.scheme != "file":
            raise OutsideStorageError(f"{uri!r} is a local path but the storage root is {root.uri}")
        path = file_uri_path(uri) if scheme == "file" else uri
        return _under(split_key(root.path), split_key(path), uri, root)
    raise OutsideStorageError(f"{uri!r} uses scheme {scheme!r}; the storage root is {root.uri}")


def _under(base: tuple[str, ...], segments: tuple[str, ...], uri: str, root: Root) -> tuple[str, ...]:
    # Compared segment-wise so that root "s3://b/data" does not contain "s3://b/database".
    if segments[: len(base)] != base:
        raise OutsideStorageError(f"{uri!r} is outside the storage root {root.uri}")
    return segments[len(base) :]
