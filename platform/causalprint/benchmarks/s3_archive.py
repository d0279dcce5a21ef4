"""A synthetic archive of many tiny images on a local S3-protocol server (moto's), for the scale benchmark.

The server runs in a process of its own (``python -m causalprint.benchmarks.s3_archive``), so that its memory (a
million objects: about 3 GB in moto) never counts as the driver's. It fills moto's backend directly, in the
process, rather than by PUT requests (tens of thousands a second instead of hundreds), prints one JSON line (its
endpoint and how the filling went), and serves until its standard input closes. :class:`ArchiveServer` starts it
and stops it.

The archive's keys are ``<prefix>/<shard>/<index>.png``: ``shard_size`` objects per shard, each a copy of one of a
few distinct 16x16 PNGs (:func:`tiny_pngs`), so that one shard is a scan's source and the whole prefix is a
listing of every object.

**moto's listing.** moto's own ``list_objects_v2`` walks every key of the bucket and sorts the matching ones on
each request, then skips to the continuation token: one page costs time proportional to the bucket, so listing
it page by page is quadratic (measured at each run: ``moto_page_seconds``). With ``indexed=True`` the server
answers flat listings (no delimiter) from a sorted index of the bucket's keys instead, one bisection per page, as
S3 itself pages; everything else (the requests, the pagination tokens, the objects and their GETs) is moto's.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from causalprint.storage.sources import SourceConfig

BUCKET = "scale-archive"
PREFIX = "objects"
PNG_SIZE = 16
DISTINCT_PNGS = 64


def tiny_pngs(count: int = DISTINCT_PNGS, size: int = PNG_SIZE, seed: int = 0) -> list[bytes]:
    """``count`` distinct ``size`` x ``size`` RGB PNGs (noise over a gradient: a few hundred bytes each)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.linspace(0, 127, size), np.linspace(0, 127, size))[..., None]
    out = []
    for _ in range(count):
        pixels = np.clip(ramp + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def archive_key(index: int, shard_size: int, prefix: str = PREFIX) -> str:
    """The key of object ``index``: ``<prefix>/<shard, 3 digits>/<index, 7 digits>.png``."""
    return f"{prefix}/{index // shard_size:03d}/{index:07d}.png"


def shard_prefix(shard: int, prefix: str = PREFIX) -> str:
    return f"{prefix}/{shard:03d}"


def _backend() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def populate(bucket: str, objects: int, shard_size: int, prefix: str = PREFIX) -> float:
    """Create ``bucket`` in this process's moto backend (if needed) and put ``objects`` tiny PNGs into it, without
    requests; returns the seconds it took. Works for an in-process server (tests) and for the archive server."""
    backend = _backend()
    if bucket not in backend.buckets:
        backend.create_bucket(bucket, "us-east-1")
    pngs = tiny_pngs()
    start = time.perf_counter()
    for index in range(objects):
        backend.put_object(bucket, archive_key(index, shard_size, prefix), pngs[index % len(pngs)])
    return time.perf_counter() - start


_INDEX: dict[str, tuple[int, list[str]]] = {}


def _sorted_names(bucket: Any) -> list[str]:
    """The bucket's key names, sorted; rebuilt when the bucket's key count changes."""
    count = len(bucket.keys)
    cached = _INDEX.get(bucket.name)
    if cached is None or cached[0] != count:
        cached = (count, sorted(bucket.keys.keys()))
        _INDEX[bucket.name] = cached
    return cached[1]


@contextmanager
def indexed_listing() -> Iterator[None]:
    """Within: moto answers flat ``list_objects_v2`` from a sorted index of each bucket's keys (module docstring)."""
    from moto.s3.models import FakeDeleteMarker, S3Backend

    original = S3Backend.list_objects_v2

    def list_objects_v2(
        self: Any,
        bucket: Any,
        prefix: str | None,
        delimiter: str | None,
        continuation_token: str | None,
        start_after: str | None,
        max_keys: int,
    ) -> Any:
        if delimiter or max_keys <= 0:
            return original(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
        names, prefix = _sorted_names(bucket), prefix or ""
        after = self._pagination_tokens.get(continuation_token) if continuation_token else start_after
        at = bisect.bisect_left(names, prefix)
        if after:
            at = max(at, bisect.bisect_right(names, after))
        keys: list[Any] = []
        while at < len(names) and names[at].startswith(prefix) and len(keys) < max_keys:
            key = bucket.keys.get(names[at])
            if key is not None and not isinstance(key, FakeDeleteMarker):
                keys.append(key)
            at += 1
        truncated = bool(keys) and at < len(names) and names[at].startswith(prefix)
        token = None
        if truncated:
            token = hashlib.md5(keys[-1].name.encode(), usedforsecurity=False).hexdigest()
            self._pagination_tokens[token] = keys[-1].name
        return keys, truncated, token

    S3Backend.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]
    try:
        yield
    finally:
        S3Backend.list_objects_v2 = original  # type: ignore[method-assign]
        _INDEX.clear()


def moto_page_seconds(bucket: str, prefix: str) -> dict[str, float]:
    """Seconds of moto's own ``list_objects_v2`` (no index) for the first page of 1,000 keys under ``prefix`` and for
    the page after it, called in the process: the cost of each request of a flat listing of this bucket."""
    backend = _backend()
    fake = backend.get_bucket(bucket)
    start = time.perf_counter()
    _keys, _truncated, token = type(backend).list_objects_v2(backend, fake, f"{prefix}/", None, None, None, 1000)
    first = time.perf_counter() - start
    start = time.perf_counter()
    type(backend).list_objects_v2(backend, fake, f"{prefix}/", None, token, None, 1000)
    return {"first_page_seconds": round(first, 3), "next_page_seconds": round(time.perf_counter() - start, 3)}


def _rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def serve(objects: int, shard_size: int, bucket: str, prefix: str, indexed: bool, probe: bool) -> None:
    """The archive server's process: fill, report one JSON line on stdout, serve until stdin closes."""
    import logging
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    seconds = populate(bucket, objects, shard_size, prefix)
    info: dict[str, Any] = {
        "objects": objects,
        "populate_seconds": round(seconds, 1),
        "objects_per_second": round(objects / max(seconds, 1e-9)),
        "server_rss_mb": _rss_mb(),
    }
    if probe:
        info["moto_listing"] = moto_page_seconds(bucket, prefix)
    if indexed:
        listing = indexed_listing()
        listing.__enter__()  # for the life of this process
        start = time.perf_counter()
        _sorted_names(_backend().get_bucket(bucket))
        info["index_seconds"] = round(time.perf_counter() - start, 2)
    info["indexed"] = indexed
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server(
        "127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    info["endpoint"] = f"http://127.0.0.1:{server.server_address[1]}"
    print(json.dumps(info), flush=True)
    sys.stdin.read()  # until the parent closes it (or dies)
    server.shutdown()


@dataclass(frozen=True)
class ArchiveInfo:
    """A running archive server: its endpoint, and how filling it went (``details``: the JSON line it printed)."""

    endpoint: str
    details: dict[str, Any]

    def source(self, name: str, bucket: str = BUCKET, prefix: str = PREFIX) -> SourceConfig:
        """The archive as a scan's read-only source (moto takes any credentials; these name the job)."""
        return SourceConfig(
            name=name,
            uri=f"s3://{bucket}/{prefix}",
            endpoint_url=self.endpoint,
            region="us-east-1",
            access_key_id=name,
            secret_access_key=name,
        )


@contextmanager
def archive_server(
    objects: int,
    shard_size: int,
    *,
    bucket: str = BUCKET,
    prefix: str = PREFIX,
    indexed: bool = True,
    probe: bool = True,
    timeout_s: float = 3600.0,
) -> Iterator[ArchiveInfo]:
    """Start the archive server in a child process, filled with ``objects`` tiny PNGs; stop it on exit."""
    command = [
        sys.executable,
        "-m",
        "causalprint.benchmarks.s3_archive",
        f"--objects={objects}",
        f"--shard-size={shard_size}",
        f"--bucket={bucket}",
        f"--prefix={prefix}",
        *(["--indexed"] if indexed else []),
        *(["--probe"] if probe else []),
    ]
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the archive server exited with {child.wait(timeout=timeout_s)} before it was ready")
        details = json.loads(line)
        yield ArchiveInfo(details["endpoint"], details)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--objects", type=int, required=True)
    parser.add_argument("--shard-size", type=int, required=True)
    parser.add_argument("--bucket", default=BUCKET)
    parser.add_argument("--prefix", default=PREFIX)
    parser.add_argument("--indexed", action="store_true", help="answer flat listings from a sorted key index")
    parser.add_argument("--probe", action="store_true", help="time moto's own listing of the full bucket first")
    args = parser.parse_args(argv)
    serve(args.objects, args.shard_size, args.bucket, args.prefix, args.indexed, args.probe)


if __name__ == "__main__":
    main()
