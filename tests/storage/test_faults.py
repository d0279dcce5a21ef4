"""Transient storage errors are tried again with back-off; permanent ones, defects and refusals are not."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from causalprint.storage.faults import Backoff, retry_transient

FAST = Backoff(attempts=3, backoff_s=0.0, max_backoff_s=0.0)


def _failing(errors: list[Exception]) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "done"

    return calls, call


def test_a_dropped_connection_is_tried_again_until_it_works() -> None:
    calls, call = _failing([EndpointConnectionError(endpoint_url="http://x")] * 2)
    assert retry_transient(call, "a write", FAST) == "done" and len(calls) == 3


def test_the_last_transient_error_is_raised_once_the_tries_are_spent() -> None:
    calls, call = _failing([EndpointConnectionError(endpoint_url="http://x")] * 3)
    with pytest.raises(EndpointConnectionError):
        retry_transient(call, "a write", FAST)
    assert len(calls) == 3


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "NoSuchKey"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "GetObject"),
        FileNotFoundError(2, "gone"),
        RuntimeError("a defect, not the store"),
    ],
)
def test_permanent_errors_and_defects_are_raised_at_once(error: Exception) -> None:
    calls, call = _failing([error])
    with pytest.raises(type(error)):
        retry_transient(call, "a write", FAST)
    assert len(calls) == 1


def test_back_off_doubles_up_to_its_cap() -> None:
    backoff = Backoff(attempts=5, backoff_s=1.0, max_backoff_s=3.0)
    assert 0.5 <= backoff.delay(1) <= 1.0 and 1.0 <= backoff.delay(2) <= 2.0 and backoff.delay(5) <= 3.0
    with pytest.raises(ValueError):
        Backoff(attempts=0)
