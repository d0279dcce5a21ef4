"""One writer per output: a lease object in storage, created atomically and renewed while its holder runs.

- **Create.** S3: a conditional PUT (``If-None-Match: *``), which S3 (and moto) refuse with 412 when the object
  exists. Local: ``O_CREAT | O_EXCL``. Only one of two writers gets the lease; the other is refused with who holds
  it and until when.
- **Renew and release.** The holder rewrites the lease (a later expiry) and finally deletes it only if it is still
  the version it wrote: S3 ``If-Match: <ETag>``; locally a hash of the content compared under an exclusive
  ``flock`` of the lease's folder, which every local lease operation takes.
- **Stale leases.** A holder that was killed stops renewing; once its expiry has passed (``ttl_s`` after the last
  renewal), the next writer replaces it with the same compare-and-swap, so of two writers that both see it stale
  only one wins. On the holder's own host a lease whose process is gone is stale at once. Expiry compares wall
  clocks: hosts whose clocks differ by more than ``ttl_s`` could both believe they hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from causalprint.storage.faults import retry_transient
from causalprint.storage.store import Storage
from causalprint.storage.uri import TEMP_PREFIX, TEMP_SUFFIX, StorageError

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 120.0


class LeaseHeldError(StorageError):
    """Another writer holds the lease of this output."""


class LeaseLostError(StorageError):
    """The lease was taken over (it had expired) while its holder still ran."""


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Local:
    """Compare-and-swap on a local file; the version is a hash of its content."""

    def __init__(self, path: str) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        folder = os.path.dirname(self.path)
        os.makedirs(folder, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @staticmethod
    def _version(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def _read(self) -> tuple[bytes, str] | None:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        return data, self._version(data)

    def create(self, data: bytes) -> str | None:
        with self._locked():
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return None
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        return self._version(data)

    def read(self) -> tuple[bytes, str] | None:
        with self._locked():
            return self._read()

    def replace(self, data: bytes, version: str) -> str | None:
        with self._locked():
            current = self._read()
            if current is None or current[1] != version:
                return None
            folder, name = os.path.split(self.path)
            tmp = os.path.join(folder, f"{TEMP_PREFIX}{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")  # never listed
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        return self._version(data)

    def delete(self, version: str) -> bool:
        with self._locked():
            current = self._read()
            if current is None or current[1] != version:
                return False
            os.remove(self.path)
        return True


class _S3:
    """Compare-and-swap on an S3 object with conditional requests; the version is its ETag."""

    def __init__(self, storage: Storage, uri: str) -> None:
        self.client = storage.boto3_client()
        self.bucket, _, self.key = storage.fs_path(uri).partition("/")

    @staticmethod
    def _refused(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            return False
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey") or status in (404, 409, 412)

    def _call(self, what: str, **kwargs: Any) -> Any:
        """One request, tried again while the store is briefly unavailable (a restart, throttling)."""
        method = getattr(self.client, what)
        return retry_transient(lambda: method(Bucket=self.bucket, Key=self.key, **kwargs), f"{what} {self.key}")

    def create(self, data: bytes) -> str | None:
        try:
            return self._call("put_object", Body=data, IfNoneMatch="*")["ETag"]
        except Exception as exc:
            if self._refused(exc):
                return None
            raise

    def read(self) -> tuple[bytes, str] | None:
        def get() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
            with contextlib.closing(response["Body"]) as body:
                return body.read(), response["ETag"]

        try:
            return retry_transient(get, f"get_object {self.key}")
        except Exception as exc:
            if self._refused(exc):
                return None
            raise

    def replace(self, data: bytes, version: str) -> str | None:
        try:
            return self._call("put_object", Body=data, IfMatch=version)["ETag"]
        except Exception as exc:
            if self._refused(exc):
                return None
            raise

    def delete(self, version: str) -> bool:
        try:
            self._call("delete_object", IfMatch=version)
        except Exception as exc:
            if self._refused(exc):
                return False
            raise
        return True


def _store_of(storage: Storage, uri: str) -> _Local | _S3:
    return _S3(storage, uri) if storage.is_s3 else _Local(storage.fs_path(uri))


def _parse(data: bytes) -> dict[str, Any]:
    try:
        record = json.loads(data)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def require_holder(storage: Storage, uri: str, what: str) -> None:
    """Raise :class:`LeaseLostError` unless the lease at ``uri`` is held by ``what``. A writer that is not the
    lease's holder (an actor left running by a killed driver, after a rerun took the lease over) calls this before
    each write, so that it never adds rows to an output whose new holder has already read what is done."""
    uri = storage.resolve(uri)
    current = _store_of(storage, uri).read()
    holder = _parse(current[0]).get("holder") if current is not None else None
    if holder != what:
        raise LeaseLostError(
            f"{what} no longer holds {uri} ({'held by ' + str(holder) if holder else 'no lease'}): "
            "this writer stops without writing"
        )


class Lease:
    """The lease of one output at ``uri`` (a file in storage). Use as a context manager: it is acquired on entry
    (or :class:`LeaseHeldError`), renewed every ``ttl_s / 3`` seconds by a thread, and released on exit.

    ``what`` names the holder in refusals (``"scan run 20261207T...-ab12cd"``).
    """

    def __init__(self, storage: Storage, uri: str, *, what: str, ttl_s: float = DEFAULT_TTL_S) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.uri = storage.resolve(uri)
        self.what, self.ttl_s = what, ttl_s
        self._store = _store_of(storage, self.uri)
        self._version: str | None = None
        # Names this holder's records: a request retried after its answer was lost finds its own write done.
        self._token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    def _record(self) -> bytes:
        now = time.time()
        return json.dumps(
            {
                "holder": self.what,
                "token": self._token,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "renewed_at": _when(now),
                # Whole milliseconds: every renewal has the same length, so that a reader which sizes the object
                # before it reads it (pyarrow) never gets a mix of two versions.
                "expires_ms": int((now + self.ttl_s) * 1000),
            },
            sort_keys=True,
        ).encode()

    def _stale(self, record: dict[str, Any]) -> bool:
        if int(record.get("expires_ms", 0)) < time.time() * 1000:
            return True
        return record.get("host") == socket.gethostname() and not _pid_alive(int(record.get("pid", 0)))

    def acquire(self) -> Lease:
        """Take the lease, replacing a stale one; :class:`LeaseHeldError` while another writer holds it."""
        for _ in range(3):  # the lease may vanish between a refused create and the read
            version = self._store.create(self._record())
            if version is not None:
                self._version = version
                return self
            current = self._store.read()
            if current is None:
                continue
            data, seen = current
            record = _parse(data)
            if record.get("token") == self._token:  # our create went through; only its answer was lost
                self._version = seen
                return self
            if not self._stale(record):
                raise LeaseHeldError(
                    f"another writer holds {self.uri}: {record.get('holder', '?')} (host {record.get('host', '?')}, "
                    f"pid {record.get('pid', '?')}), renewed {record.get('renewed_at', '?')}, until "
                    f"{_when(int(record.get('expires_ms', 0)) / 1000)}. One writer per output: wait for it to "
                    "finish, or write elsewhere; a killed writer's lease runs out at that time"
                )
            version = self._store.replace(self._record(), seen)
            if version is not None:
                log.warning("took over the stale lease %s of %s", self.uri, record.get("holder", "?"))
                self._version = version
                return self
        raise LeaseHeldError(f"could not take the lease {self.uri}: other writers keep changing it")

    def renew(self) -> None:
        """Push the expiry forward; :class:`LeaseLostError` when the lease is no longer ours."""
        if self._version is None:
            raise LeaseLostError(f"the lease {self.uri} is not held")
        version = self._store.replace(self._record(), self._version)
        if version is None:
            current = self._store.read()
            if current is not None and _parse(current[0]).get("token") == self._token:
                self._version = current[1]  # our replace went through; only its answer was lost
                return
            self.lost = (
                f"the lease {self.uri} was taken over by another writer after it expired (not renewed "
                f"within {self.ttl_s:g} s): rows of both may be in the output"
            )
            raise LeaseLostError(self.lost)
        self._version = version

    def check(self) -> None:
        """Raise :class:`LeaseLostError` if the heartbeat found the lease taken over."""
        if self.lost:
            raise LeaseLostError(self.lost)

    def release(self) -> None:
        """Delete the lease if it is still ours."""
        if self._version is not None:
            self._store.delete(self._version)
            self._version = None

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.renew()
            except LeaseLostError as exc:
                log.error("%s", exc)
                return
            except Exception as exc:  # a storage hiccup: try again at the next beat, the expiry leaves room
                log.warning("could not renew the lease %s: %s", self.uri, exc)

    def __enter__(self) -> Lease:
        self.acquire()
        self._thread = threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(Exception):  # an expired lease is harmless; the error in flight matters more
            self.release()
