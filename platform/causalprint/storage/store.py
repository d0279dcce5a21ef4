"""One object for every file the platform reads or writes, on a local disk or S3.

Every URI passes :meth:`Storage.resolve` first, which refuses anything outside the configured root. Writes
are atomic: a failed job leaves no half-written object that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from causalprint.storage.config import StorageConfig
from causalprint.storage.connect import S3Settings, boto3_s3, pyarrow_s3, s3_settings
from causalprint.storage.uri import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    NotARegularFileError,
    OutsideStorageError,
    Root,
    StorageError,
    contained_key,
    is_temp_name,
    join_local,
    parse_root,
    split_key,
)

# S3 writes are buffered in memory up to this size, then spill to a temporary file on local disk.
_SPOOL_BYTES = 32 * 1024 * 1024
_DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once at import, before any threads write files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@dataclass(frozen=True)
class FileInfo:
    """A file found by :meth:`Storage.list_files`."""

    uri: str
    size: int


class Storage:
    """Files under one root (a local directory or ``s3://bucket/prefix``), addressed by URI or root-relative path.

    Picklable: the filesystem and boto3 client are rebuilt lazily after unpickling, so a Storage can be shipped
    to Ray workers. Endpoint and region are settled when the Storage is built (config, then environment).
    """

    def __init__(self, config: StorageConfig):
        self.config = config
        self._root: Root = parse_root(config.root)
        self.root: str = self._root.uri
        self.is_s3: bool = self._root.scheme == "s3"
        if not self.is_s3 and os.path.exists(self.root) and not os.path.isdir(self.root):
            raise StorageError(f"storage.root {self.root} is a file, not a folder: set storage.root to a folder")
        self._s3: S3Settings | None = s3_settings(config) if self.is_s3 else None
        self._init_runtime()

    @classmethod
    def from_config(cls, config: StorageConfig) -> Storage:
        """Build a Storage for ``config``."""
        return cls(config)

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._fs: pafs.FileSystem | None = None
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Live clients hold sockets and locks; the receiving process rebuilds its own.
        state = self.__dict__.copy()
        for name in ("_lock", "_fs", "_client"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return f"Storage(root={self.root!r})"

    # -- connections ---------------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str | None:
        """The S3 endpoint in use (None for AWS's own, or for local storage)."""
        return self._s3.endpoint_url if self._s3 else None

    @property
    def region(self) -> str | None:
        """The S3 region in use (None for local storage)."""
        return self._s3.region if self._s3 else None

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem that :meth:`fs_path` paths belong to; built on first use."""
        if self._fs is None:
            with self._lock:
                if self._fs is None:
                    self._fs = pyarrow_s3(self._s3) if self._s3 else pafs.LocalFileSystem()
        return self._fs

    def boto3_client(self) -> Any:
        """A boto3 S3 client with this storage's endpoint, region and credentials (S3 roots only)."""
        if self._s3 is None:
            raise StorageError(f"boto3_client() needs an S3 root; this storage is local ({self.root})")
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = boto3_s3(self._s3)
        return self._client

    def ensure_bucket(self) -> None:
        """Create the S3 bucket if it does not exist yet; for a local root, create the directory."""
        if not self.is_s3:
            os.makedirs(self.root, exist_ok=True)
            return
        from botocore.exceptions import ClientError

        client = self.boto3_client()
        bucket = self._root.bucket
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region and self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            client.create_bucket(**kwargs)
        except ClientError as exc:
            # Another worker may have created it between the HEAD and the CREATE.
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    # -- addressing ----------------------------------------------------------------------------------------

    def _join(self, segments: tuple[str, ...]) -> str:
        if self.is_s3:
            return "/".join((self.root, *segments))
        return join_local(self.root, segments)

    def _segments(self, uri: str) -> tuple[str, ...]:
        return contained_key(self._root, uri)

    def _file_key(self, uri: str) -> tuple[str, ...]:
        segments = self._segments(uri)
        if not segments:
            raise StorageError(f"{uri!r} is the storage root itself, not a file")
        return segments

    def uri(self, *parts: str) -> str:
        """Join root-relative ``parts`` (each may hold ``/``) into a full URI under the root."""
        segments: list[str] = []
        for part in parts:
            part = os.fspath(part)
            if part.startswith("/") or "://" in part:
                raise OutsideStorageError(f"uri() takes root-relative parts, got {part!r}")
            segments.extend(split_key(part))
        return self._join(tuple(segments))

    def resolve(self, uri: str) -> str:
        """Normalise a full URI or root-relative path to a full URI, refusing anything outside the root.

        Raises :class:`OutsideStorageError` for ``..`` segments, another bucket or prefix, another scheme,
        or a local path outside the root. This is the storage security boundary.
        """
        return self._join(self._segments(uri))

    def relative(self, uri: str) -> str:
        """The root-relative key of ``uri`` (``""`` for the root itself)."""
        return "/".join(self._segments(uri))

    def fs_path(self, uri: str) -> str:
        """The path of ``uri`` for :attr:`filesystem`: ``bucket/key`` on S3, an absolute path locally."""
        full = self.resolve(uri)
        return full[len("s3://") :] if self.is_s3 else full

    def uri_from_fs_path(self, path: str) -> str:
        """Inverse of :meth:`fs_path`; the result is checked to lie inside the root."""
        if self.is_s3:
            if "://" in path:
                raise OutsideStorageError(f"expected a bucket/key path, got {path!r}")
            return self.resolve("s3://" + path.lstrip("/"))
        if not path.startswith("/"):
            raise StorageError(f"expected an absolute local path, got {path!r}")
        return self.resolve(path)

    # -- reading -------------------------------------------------------------------------------------------

    def exists(self, uri: str) -> bool:
        """True if ``uri`` is a file, or a directory (on S3: a non-empty prefix)."""
        info = self.filesystem.get_file_info(self.fs_path(uri))
        return info.type != pafs.FileType.NotFound

    def _local_file(self, path: str) -> os.stat_result:
        """Stat a local file to read, refusing a link that resolves outside the root and any non-regular file
        (a FIFO would block an open, a device never ends) before anything is opened."""
        real, root = os.path.realpath(path), os.path.realpath(self.root)
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            raise OutsideStorageError(f"{path} is a link to a place outside the storage root {self.root}")
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise FileNotFoundError(f"no such file: {path} is a folder")
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFileError(f"{path} is not a regular file (a FIFO, socket or device): never opened")
        return info

    def size(self, uri: str) -> int:
        """Size of a file in bytes; FileNotFoundError if it is not a file."""
        path = self.fs_path(uri)
        if not self.is_s3:
            return int(self._local_file(path).st_size)
        info = self.filesystem.get_file_info(path)
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"no such file: {self._join(self._segments(uri))}")
        return int(info.size)

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of a file; FileNotFoundError if missing."""
        path = self.fs_path(uri)
        if not self.is_s3:
            self._local_file(path)
            # O_NONBLOCK: should the path become a FIFO after the check, opening it cannot hang.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise NotARegularFileError(f"{path} is not a regular file: not read")
                return handle.read()
        info = self.filesystem.get_file_info(path)
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"no such file: s3://{path}")
        with self.filesystem.open_input_stream(path) as stream:
            return stream.read()

    def read_at_most(self, uri: str, limit: int) -> bytes:
        """The first ``limit`` bytes of a file, or all of it when shorter: one request, no size look-up first.

        A caller that refuses files over N bytes asks for N + 1 and refuses a longer answer, so an oversized
        file costs N + 1 bytes and never the whole. On S3 this is a single ranged GET (no HEAD); locally, the
        same checks as :meth:`read_bytes` (no link out of the root, no FIFO or device), then one bounded read.
        FileNotFoundError if there is no such file.
        """
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        path = self.fs_path(uri)
        if not self.is_s3:
            self._local_file(path)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise NotARegularFileError(f"{path} is not a regular file: not read")
                return handle.read(limit)
        if limit == 0:
            return b""
        from botocore.exceptions import ClientError

        key = "/".join((*self._root.prefix, *self._file_key(uri)))
        try:
            response = self.boto3_client().get_object(Bucket=self._root.bucket, Key=key, Range=f"bytes=0-{limit - 1}")
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(f"no such file: s3://{path}") from None
            # An empty object has no byte 0: S3 answers 416 to any range over it.
            if (
                error.get("Code") == "InvalidRange"
                or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 416
            ):
                return b""
            raise
        with contextlib.closing(response["Body"]) as body:
            return body.read(limit)

    def read_json(self, uri: str) -> Any:
        """Parse a JSON file."""
        return json.loads(self.read_bytes(uri))

    def read_parquet(self, uri: str) -> pa.Table:
        """Read a Parquet file (or a directory of them) into a table."""
        return pq.read_table(self.fs_path(uri), filesystem=self.filesystem)

    def list_files(self, prefix: str, suffixes: tuple[str, ...] | None = None) -> list[FileInfo]:
        """Files under ``prefix``, recursively, sorted by URI; in-flight temp files are skipped.

        ``suffixes`` match case-insensitively (``(".png", ".jpg")``). A missing prefix gives ``[]``; a prefix
        that is itself a file gives that file.
        """
        path = self.fs_path(prefix)
        fs = self.filesystem
        top = fs.get_file_info(path)
        if top.type == pafs.FileType.File:
            infos = [top]
        elif top.type == pafs.FileType.NotFound and not self.is_s3:
            return []
        else:
            # On S3 a prefix may be "missing" to get_file_info yet list fine; allow_not_found covers both.
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        wanted = tuple(s.lower() for s in ((suffixes,) if isinstance(suffixes, str) else suffixes or ()))
        found = []
        for info in infos:
            if info.type != pafs.FileType.File or is_temp_name(info.path):
                continue
            if wanted and not info.path.lower().endswith(wanted):
                continue
            found.append(FileInfo(uri=self.uri_from_fs_path(info.path), size=int(info.size)))
        return sorted(found, key=lambda f: f.uri)

    # -- writing -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def open_atomic(self, uri: str) -> Iterator[BinaryIO]:
        """A writable binary file; the object appears at ``uri`` only if the block exits without an exception."""
        segments = self._file_key(uri)
        if self.is_s3:
            with self._open_atomic_s3(segments) as handle:
                yield handle
        else:
            with self._open_atomic_local(self._join(segments)) as handle:
                yield handle

    @contextlib.contextmanager
    def _open_atomic_local(self, path: str) -> Iterator[BinaryIO]:
        directory, name = os.path.split(path)
        os.makedirs(directory, exist_ok=True)
        # Same directory, so os.replace is an atomic rename; the ".*.tmp" name keeps it out of listings.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{TEMP_PREFIX}{name}.", suffix=TEMP_SUFFIX)
        try:
            handle = os.fdopen(fd, "wb")
            try:
                yield handle
                if not handle.closed:  # the caller may have closed it; the data reached the OS either way
                    handle.flush()
                    os.fsync(handle.fileno())
            finally:
                handle.close()
            # mkstemp makes files 0600; give the result the mode a plain open() would have.
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _open_atomic_s3(self, segments: tuple[str, ...]) -> Iterator[BinaryIO]:
        # Never stream to the final key: buffer, then upload on success. upload_fileobj's multipart upload
        # only becomes visible when completed, and s3transfer aborts it on failure.
        key = "/".join((*self._root.prefix, *segments))
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as buffer:
            yield buffer  # type: ignore[misc]
            if buffer.closed:
                raise StorageError(f"the buffer for s3://{self._root.bucket}/{key} was closed before upload")
            buffer.seek(0)
            self.boto3_client().upload_fileobj(buffer, self._root.bucket, key)

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a whole file atomically."""
        segments = self._file_key(uri)
        if self.is_s3:
            # A single PUT is atomic by itself.
            key = "/".join((*self._root.prefix, *segments))
            self.boto3_client().put_object(Bucket=self._root.bucket, Key=key, Body=bytes(data))
            return
        with self._open_atomic_local(self._join(segments)) as handle:
            handle.write(data)

    def write_json(self, uri: str, obj: Any) -> None:
        """Write ``obj`` as indented, key-sorted JSON, atomically."""
        text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        self.write_bytes(uri, text.encode("utf-8"))

    def write_parquet(self, uri: str, table: pa.Table) -> None:
        """Write ``table`` as one Parquet file, atomically."""
        with self.open_atomic(uri) as handle:
            pq.write_table(table, handle)

    # -- deleting ------------------------------------------------------------------------------------------

    def delete(self, uri: str) -> None:
        """Delete one file; a missing file is not an error."""
        segments = self._file_key(uri)
        if self.is_s3:
            key = "/".join((*self._root.prefix, *segments))
            self.boto3_client().delete_object(Bucket=self._root.bucket, Key=key)
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._join(segments))

    def delete_prefix(self, prefix: str) -> None:
        """Delete everything under ``prefix`` (a directory, not a string prefix); missing is fine.

        Refuses the root itself, so that an empty or mistaken argument cannot wipe the whole storage.
        """
        segments = self._segments(prefix)
        if not segments:
            raise StorageError(f"refusing to delete the whole storage root {self.root}")
        if not self.is_s3:
            path = self._join(segments)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            return
        client = self.boto3_client()
        key_prefix = "/".join((*self._root.prefix, *segments)) + "/"
        batch: list[dict[str, str]] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self._root.bucket, Prefix=key_prefix):
            for item in page.get("Contents", []):
                batch.append({"Key": item["Key"]})
                if len(batch) == _DELETE_BATCH:
                    self._delete_keys(batch)
                    batch = []
        if batch:
            self._delete_keys(batch)

    def _delete_keys(self, objects: list[dict[str, str]]) -> None:
        response = self.boto3_client().delete_objects(
            Bucket=self._root.bucket, Delete={"Objects": objects, "Quiet": True}
        )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} objects, e.g. {first.get('Key')}: {first.get('Message')}"
            )
