"""A real S3-protocol server with faults: moto's WSGI app on 127.0.0.1 behind a wrapper that answers as a
troubled S3 would, before moto sees the request.

- ``keys[bucket] = access key id``: requests on that bucket signed with any other key get 403
  ``InvalidAccessKeyId`` (moto itself accepts any credentials), so a bucket has credentials of its own;
- ``fail_gets[bucket] = n``: the next ``n`` object GETs on that bucket get 503 ``SlowDown``, as S3 under load
  answers (``n = -1``: every one, until changed).

Every request is recorded as (method, path, status); the wrapper is shared by every test of a module.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")
_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    "<Resource>{path}</Resource><RequestId>fault</RequestId></Error>"
)

W = TypeVar("W")


@dataclass(frozen=True)
class Request:
    """One request the server answered, whoever sent it (boto3 or pyarrow)."""

    method: str
    path: str
    query: str
    range: str  # the Range header, "" without one


@dataclass
class RequestRecorder:
    """WSGI middleware in front of moto that records every request it answers (``wsgi_s3(RequestRecorder)``)."""

    app: Any
    requests: list[Request] = field(default_factory=list)

    def __call__(self, environ: dict, start_response: Any) -> Any:
        self.requests.append(
            Request(
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", ""),
                environ.get("QUERY_STRING", ""),
                environ.get("HTTP_RANGE", ""),
            )
        )
        return self.app(environ, start_response)

    def under(self, prefix: str) -> list[Request]:
        """The requests on paths under ``prefix`` ("/bucket/objects/")."""
        return [r for r in self.requests if r.path.startswith(prefix)]


@dataclass
class FaultyS3:
    app: Any
    keys: dict[str, str] = field(default_factory=dict)
    fail_gets: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _answer(self, start_response: Any, status: str, code: str, message: str, path: str) -> list[bytes]:
        body = _ERROR.format(code=code, message=message, path=path).encode()
        start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ: dict, start_response: Any) -> Any:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        bucket, _, key = path.lstrip("/").partition("/")
        with self.lock:
            fault = None
            wanted = self.keys.get(bucket)
            if wanted is not None:
                match = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
                if not match or match.group(1) != wanted:
                    fault = (
                        "403 Forbidden",
                        "InvalidAccessKeyId",
                        "The AWS Access Key Id you provided does not exist in our records.",
                    )
            if fault is None and method == "GET" and key and self.fail_gets.get(bucket, 0):
                if self.fail_gets[bucket] > 0:
                    self.fail_gets[bucket] -= 1
                fault = ("503 Slow Down", "SlowDown", "Please reduce your request rate.")
            self.requests.append((method, path, int(fault[0][:3]) if fault else 200))
        if fault is not None:
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            return self._answer(start_response, fault[0], fault[1], fault[2], path)
        return self.app(environ, start_response)

    def statuses(self, bucket: str) -> list[int]:
        """The status of every object GET on ``bucket`` so far (faults and moto's answers alike: 200 for moto)."""
        return [s for m, p, s in self.requests if m == "GET" and p.startswith(f"/{bucket}/") and p != f"/{bucket}/"]


@contextmanager
def wsgi_s3(wrap: Callable[[Any], W]) -> Iterator[tuple[str, W]]:
    """moto's S3 server on 127.0.0.1, in this process, behind ``wrap`` (a WSGI middleware: a recorder, a fault
    injector); yields its endpoint and the middleware."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    wrapper = wrap(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, wrapper, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", wrapper
    finally:
        server.shutdown()
        thread.join()


@contextmanager
def faulty_s3() -> Iterator[tuple[str, FaultyS3]]:
    """Start the server; yields its endpoint and the wrapper (whose faults a test sets and clears)."""
    with wsgi_s3(FaultyS3) as started:
        yield started
