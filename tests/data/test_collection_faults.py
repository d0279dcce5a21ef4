"""Transient read errors against a real S3-protocol server with faults (moto behind tests/s3_faults.py): retried
with back-off, then a failure or a row marked retryable; errors about the file itself are never retried."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from image_samples import collection_files
from s3_faults import FaultyS3, faulty_s3

from causalprint.data.collection import ReadRetry, TransientReadError, decode_rows
from causalprint.imaging import IntakeConfig
from causalprint.storage import Storage, StorageConfig

CONFIG = IntakeConfig(size=16)
FAST = {"backoff_s": 0.01, "max_backoff_s": 0.05}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FaultyS3]]:
    with faulty_s3() as started:
        yield started


@pytest.fixture()
def archive(server: tuple[str, FaultyS3]) -> Iterator[tuple[Storage, FaultyS3, list[str]]]:
    """A bucket with one good image and one that is not an image; no botocore retries (max_attempts 1), so every
    try is one GET that the test can count."""
    endpoint, faults = server
    storage = Storage(StorageConfig(root="s3://faults/archive", endpoint_url=endpoint, max_attempts=1))
    storage.ensure_bucket()
    files, good, _bad = collection_files()
    name = next(n for n in good if n.endswith(".png"))
    storage.write_bytes("good.png", files[name])
    storage.write_bytes("text.png", b"not an image at all")
    faults.requests.clear()
    yield storage, faults, [storage.uri("good.png"), storage.uri("text.png")]
    faults.fail_gets.clear()
    faults.keys.clear()


def _decode(storage: Storage, uris: list[str], retry: ReadRetry | None) -> dict[str, np.ndarray]:
    return decode_rows({"uri": np.array(uris, dtype=object)}, storage, CONFIG, retry)


def test_a_503_for_a_while_is_retried_with_back_off_and_the_file_is_read(archive) -> None:
    storage, faults, (good, _text) = archive
    faults.fail_gets["faults"] = 2
    out = _decode(storage, [good], ReadRetry(attempts=3, **FAST))
    assert out["ok"].tolist() == [True] and out["retryable"].tolist() == [False]
    assert faults.statuses("faults") == [503, 503, 200]


def test_spent_retries_fail_the_batch_or_make_a_retryable_row(archive) -> None:
    storage, faults, (good, text) = archive
    faults.fail_gets["faults"] = -1
    with pytest.raises(
        TransientReadError,
        match=r"could not read s3://faults/archive/good.png after 3 tries: "
        r"throttled or unavailable \(SlowDown\)",
    ):
        _decode(storage, [good], ReadRetry(attempts=3, **FAST))
    out = _decode(storage, [good, text], ReadRetry(attempts=2, on_transient="row", **FAST))
    assert out["ok"].tolist() == [False, False] and out["retryable"].tolist() == [True, True]
    assert out["error_kind"].tolist() == ["read_failed", "read_failed"]
    assert "after 2 tries (retryable)" in out["error"][0] and "SlowDown" in out["error"][0]
    # Once the server is well again, the same rows read as what they are: an image, and a file that is not one.
    faults.fail_gets.clear()
    out = _decode(storage, [good, text], ReadRetry(**FAST))
    assert out["ok"].tolist() == [True, False] and out["retryable"].tolist() == [False, False]
    assert out["error_kind"][1] == "not_an_image"


def test_a_wrong_credential_is_transient_and_a_missing_file_is_not(archive) -> None:
    storage, faults, (good, _text) = archive
    faults.keys["faults"] = "the-archive-key"  # the storage signs with the session's "testing" key
    with pytest.raises(TransientReadError, match=r"credentials \(InvalidAccessKeyId\)"):
        _decode(storage, [good], ReadRetry(attempts=2, **FAST))
    assert faults.statuses("faults") == [403, 403]
    faults.keys.clear()
    faults.requests.clear()
    missing = storage.uri("gone.png")
    out = _decode(storage, [missing], ReadRetry(attempts=3, **FAST))
    assert out["error_kind"].tolist() == ["read_failed"] and out["retryable"].tolist() == [False]
    assert len(faults.statuses("faults")) == 1, "a missing file is read once"


def test_without_a_retry_policy_every_read_failure_is_a_row_as_before(archive) -> None:
    storage, faults, (good, _text) = archive
    faults.fail_gets["faults"] = -1
    out = _decode(storage, [good], None)
    assert out["error_kind"].tolist() == ["read_failed"] and "retryable" not in out
    assert faults.statuses("faults") == [503]


def test_a_retry_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="attempts"):
        ReadRetry(attempts=0)
    with pytest.raises(ValueError, match="on_transient"):
        ReadRetry(on_transient="skip")  # type: ignore[arg-type]
    assert ReadRetry(backoff_s=1, max_backoff_s=3).delay(5) <= 3
