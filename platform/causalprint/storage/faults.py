"""Which storage errors are worth another try: transient ones (throttling, a timeout, a server error, credentials,
a connection) against permanent ones (no such file, a folder, anything about the file itself).

A transient error says nothing about the file: the same read may succeed after a pause, or once a credential or a
permission is fixed, so a job must not record it as the file's answer. Errors of unknown types count as
transient too: a defect is not a property of the file either.
"""

from __future__ import annotations

import errno
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

# S3 error codes of throttling, timeouts and server trouble (botocore's standard retry mode retries these too).
THROTTLING = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "PriorRequestNotComplete",
    }
)
# S3 error codes of credentials and permissions: fixed outside the archive, after which the file reads fine.
CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "TokenRefreshRequired",
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    }
)
# Local OS errors of the same nature: an I/O error, a timeout, a dropped connection, a permission.
_TRANSIENT_ERRNO = frozenset(
    {
        errno.EIO,
        errno.EAGAIN,
        errno.ETIMEDOUT,
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ESTALE,
        errno.EACCES,
        errno.EPERM,
        errno.EBUSY,
        errno.EINTR,
    }
)
# Local OS errors about the path itself.
_PERMANENT_OS = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def transient_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is transient (``"throttled or unavailable"``, ``"credentials"``, ``"connection"``...), or
    None when it is permanent: a property of the file, which another try would only repeat."""
    try:
        from botocore import exceptions as boto
    except ImportError:  # pragma: no cover - boto3 is a dependency; kept so local storage never needs it
        boto = None
    if boto is not None:
        from boto3.exceptions import S3UploadFailedError

        inner = exc.__cause__ or exc.__context__
        if isinstance(exc, S3UploadFailedError) and inner is not None:  # boto3 wraps the request's own error
            return transient_reason(inner)
        if isinstance(exc, boto.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in CREDENTIALS or status in (401, 403):
                return f"credentials ({code or status})"
            if code in THROTTLING or status in (408, 429) or status >= 500:
                return f"throttled or unavailable ({code or status})"
            return None
        if isinstance(exc, (boto.NoCredentialsError, boto.PartialCredentialsError, boto.CredentialRetrievalError)):
            return "credentials (none found)"
        if isinstance(exc, (boto.ConnectionError, boto.HTTPClientError, boto.ResponseStreamingError)):
            return f"connection ({type(exc).__name__})"
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return f"connection ({type(exc).__name__})"
    if isinstance(exc, _PERMANENT_OS):
        return None
    if isinstance(exc, PermissionError):
        return "permission"
    if isinstance(exc, OSError):
        if exc.errno is None:  # pyarrow's S3 errors and the like: no code to judge by
            return f"I/O ({type(exc).__name__})"
        return f"I/O ({errno.errorcode.get(exc.errno, exc.errno)})" if exc.errno in _TRANSIENT_ERRNO else None
    return f"unexpected {type(exc).__name__}"


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all, with pauses of ``backoff_s`` doubling between them (capped at
    ``max_backoff_s``, jittered)."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(f"attempts must be >= 1 and back-offs >= 0, got {self}")

    def delay(self, tries: int) -> float:
        """Seconds to wait after the ``tries``-th failure."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)


# The writes a job cannot do without (report parts, leases): about half a minute of tries, so that a storage
# server that restarts or sheds load for a few seconds costs a pause, not the job.
WRITE_BACKOFF = Backoff(attempts=7, backoff_s=0.5, max_backoff_s=8.0)


def retry_transient(call: Callable[[], T], what: str, backoff: Backoff = WRITE_BACKOFF) -> T:
    """``call()``, tried again after a pause while it fails for a transient reason of storage (throttling, a
    server error, a dropped connection, credentials). A permanent error, or an error of a type storage does not
    raise (a defect, or a refusal such as a held lease), is raised at once; the last transient one once the tries
    are spent."""
    tries = 0
    while True:
        try:
            return call()
        except Exception as exc:
            reason = transient_reason(exc)
            tries += 1
            if reason is None or reason.startswith("unexpected") or tries >= backoff.attempts:
                raise
            pause = backoff.delay(tries)
            log.warning("%s: %s (%s); try %d of %d in %.1f s", what, reason, exc, tries + 1, backoff.attempts, pause)
            time.sleep(pause)
