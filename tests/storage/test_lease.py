"""One writer per output: the lease object, created atomically on local disk (O_EXCL) and on the session's S3
server (a conditional PUT), refused to a second writer, renewed, released, and taken over once stale."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from causalprint.storage import Storage, StorageConfig
from causalprint.storage.faults import transient_reason
from causalprint.storage.lease import Lease, LeaseHeldError, LeaseLostError


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return Storage(StorageConfig(root=str(tmp_path)))
    endpoint, bucket = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")
    return Storage(StorageConfig(root=f"s3://{bucket}/cp", endpoint_url=endpoint))


def test_a_second_writer_is_refused_until_the_first_releases(storage: Storage) -> None:
    with Lease(storage, "out/_lease.json", what="scan run A", ttl_s=60):
        record = storage.read_json("out/_lease.json")
        assert record["holder"] == "scan run A" and record["expires_ms"] > time.time() * 1000
        with pytest.raises(LeaseHeldError, match=r"another writer holds .*out/_lease.json: scan run A .*until"):
            Lease(storage, "out/_lease.json", what="scan run B").acquire()
        # Beside it, another output has a lease of its own.
        with Lease(storage, "other/_lease.json", what="scan run C"):
            pass
    assert not storage.exists("out/_lease.json")
    with Lease(storage, "out/_lease.json", what="scan run B"):
        assert storage.read_json("out/_lease.json")["holder"] == "scan run B"


def test_the_heartbeat_renews_and_a_stale_lease_is_taken_over_once(storage: Storage) -> None:
    with Lease(storage, "out/_lease.json", what="A", ttl_s=2.0):  # renewed every 0.67 s; room for a busy machine
        first = storage.read_json("out/_lease.json")["expires_ms"]
        time.sleep(2.5)  # longer than the ttl: only the heartbeat keeps it
        assert storage.read_json("out/_lease.json")["expires_ms"] > first
        with pytest.raises(LeaseHeldError):
            Lease(storage, "out/_lease.json", what="B").acquire()

    # A holder that stopped renewing (killed): once expired, the next writer takes it over, and the old holder
    # learns that it lost it.
    old = Lease(storage, "out/_lease.json", what="killed", ttl_s=0.2).acquire()
    time.sleep(0.4)
    new = Lease(storage, "out/_lease.json", what="next", ttl_s=60).acquire()
    assert storage.read_json("out/_lease.json")["holder"] == "next"
    with pytest.raises(LeaseLostError, match="taken over"):
        old.renew()
    old.release()  # not ours any more: left alone
    assert storage.read_json("out/_lease.json")["holder"] == "next"
    new.release()
    assert not storage.exists("out/_lease.json")


def test_a_lease_of_a_dead_process_on_this_host_is_stale_at_once(storage: Storage) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lease = Lease(storage, "out/_lease.json", what="killed driver", ttl_s=3600).acquire()
    record = storage.read_json("out/_lease.json")
    lease.release()
    record["pid"] = int(dead.stdout)
    storage.write_bytes("out/_lease.json", json.dumps(record).encode())
    with Lease(storage, "out/_lease.json", what="rerun"):
        assert storage.read_json("out/_lease.json")["holder"] == "rerun"


def test_errors_are_told_apart() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    assert transient_reason(client_error("SlowDown", 503)) == "throttled or unavailable (SlowDown)"
    assert transient_reason(client_error("InternalError", 500)).startswith("throttled")
    assert transient_reason(client_error("InvalidAccessKeyId", 403)) == "credentials (InvalidAccessKeyId)"
    assert transient_reason(NoCredentialsError()).startswith("credentials")
    assert transient_reason(EndpointConnectionError(endpoint_url="http://x")).startswith("connection")
    assert transient_reason(TimeoutError()).startswith("connection")
    assert transient_reason(PermissionError(13, "denied")) == "permission"
    assert transient_reason(RuntimeError("a defect")) == "unexpected RuntimeError"
    for permanent in (
        client_error("InvalidRange", 416),
        client_error("NoSuchKey", 404),
        FileNotFoundError(2, "x"),
        IsADirectoryError(21, "x"),
    ):
        assert transient_reason(permanent) is None


def test_a_request_whose_answer_was_lost_finds_its_own_write_done(s3_endpoint: str, s3_bucket: str) -> None:
    """The create and the renewal reach the server, then the connection drops before the answer: the retried
    request is refused (the object exists, or has changed), and the holder recognises the record as its own."""
    from botocore.exceptions import EndpointConnectionError

    storage = Storage(StorageConfig(root=f"s3://{s3_bucket}/cp", endpoint_url=s3_endpoint))
    lease = Lease(storage, "out/_lease.json", what="scan run A", ttl_s=60)
    client, put = lease._store.client, lease._store.client.put_object  # type: ignore[union-attr]
    dropped: list[str] = []

    def put_then_drop(**kwargs: object) -> object:
        answer = put(**kwargs)
        if len(dropped) < 2:
            dropped.append(str(kwargs.get("IfNoneMatch") or kwargs.get("IfMatch")))
            raise EndpointConnectionError(endpoint_url=s3_endpoint)
        return answer

    client.put_object = put_then_drop
    lease.acquire()
    lease.renew()
    assert len(dropped) == 2 and dropped[0] == "*"
    assert storage.read_json("out/_lease.json")["holder"] == "scan run A" and not lease.lost
    with pytest.raises(LeaseHeldError):
        Lease(storage, "out/_lease.json", what="scan run B").acquire()
    lease.release()
    assert not storage.exists("out/_lease.json")
