"""Scans of what users have: a read-only archive prefix in a bucket of its own (its own credentials), with the
report in the platform's bucket; the allow-list refusing everything else; transient storage faults retried, failed
or kept as retryable rows; --retry-errors; one writer per report.

The S3 server is moto's on 127.0.0.1 behind tests/s3_faults.py, which gives the archive bucket credentials of its
own and answers 503 SlowDown for a while when a test asks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from s3_faults import FaultyS3, faulty_s3
from scan_world import REFERENCE, TINY_MODEL, World

from causalprint.cli import main
from causalprint.data.parts import read_parts
from causalprint.scan.errors import ScanError
from causalprint.scan.job import run_scan
from causalprint.storage import Storage, StorageConfig
from causalprint.storage.folders import upload_folder
from causalprint.storage.lease import Lease, LeaseHeldError
from causalprint.storage.sources import SourceConfig

pytestmark = pytest.mark.slow

ARCHIVE = "archive-bucket"
PREFIX = f"s3://{ARCHIVE}/2026/11"


@pytest.fixture(scope="module")
def s3(attribution_world: World) -> Iterator[tuple[str, FaultyS3, Storage]]:
    """The server; the archive bucket (key ``archive-reader`` only) holding the world's inbox under ``2026/11/``
    and one more file beside it; the platform's bucket with the reference model."""
    world = attribution_world
    with faulty_s3() as (endpoint, faults):
        admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        admin.create_bucket(Bucket=ARCHIVE)
        for info in world.storage.list_files(world.inbox):
            admin.put_object(
                Bucket=ARCHIVE, Key=f"2026/11/{info.uri.rsplit('/', 1)[1]}", Body=world.storage.read_bytes(info.uri)
            )
        admin.put_object(Bucket=ARCHIVE, Key="2026/other/private.png", Body=world.storage.read_bytes(world.good[0]))
        faults.keys[ARCHIVE] = "archive-reader"
        platform = Storage(StorageConfig(root="s3://platform-reports/cp", endpoint_url=endpoint))
        platform.ensure_bucket()
        upload_folder(platform, Path(world.storage.root) / REFERENCE, REFERENCE)
        yield endpoint, faults, platform


def _archive(endpoint: str, key: str = "archive-reader") -> SourceConfig:
    # One S3 request per read (no botocore retries), so the scan's own retries are what the test counts.
    return SourceConfig(
        name="archive",
        uri=PREFIX,
        endpoint_url=endpoint,
        access_key_id=key,
        secret_access_key="archive-secret",
        max_attempts=1,
    )


def _job(world: World, platform: Storage, output: str, source: SourceConfig, **scan):
    job = world.job(output, source=PREFIX, storage=platform.config)
    return job.model_copy(update={"sources": (source,), "scan": job.scan.model_copy(update=scan)})


def _archive_keys(endpoint: str) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="archive-reader",
        aws_secret_access_key="x",
    )
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=ARCHIVE)["Contents"])


def _names(world: World) -> dict[str, str | None]:
    """File name -> expected error kind (None for an image)."""
    return {**{u.rsplit("/", 1)[1]: None for u in world.good}, **{u.rsplit("/", 1)[1]: k for u, k in world.bad.items()}}


def test_a_read_only_archive_prefix_is_scanned_into_the_platforms_bucket(
    attribution_world: World, s3, tmp_path: Path, capsys
) -> None:
    world, (endpoint, _faults, platform) = attribution_world, s3
    before = _archive_keys(endpoint)
    config = tmp_path / "archive.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"root": platform.root, "endpoint_url": endpoint},
                "mlflow": {"tracking_uri": world.tracking_uri},
                "sources": [
                    {
                        "name": "archive",
                        "uri": PREFIX,
                        "endpoint_url": endpoint,
                        "access_key_id": "archive-reader",
                        "secret_access_key": "archive-secret",
                    }
                ],
            }
        )
    )
    assert main(["scan", PREFIX, "--config", str(config)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    report = next(line.split("report: ", 1)[1] for line in out.splitlines() if line.startswith("report: "))
    assert report.startswith("s3://platform-reports/cp/scans/tiny/archive-") and report.endswith(f"{TINY_MODEL}-v1")
    rows = {r["uri"].rsplit("/", 1)[1]: r for r in read_parts(platform, report).to_pylist()}
    assert {r["uri"] for r in rows.values()} == {f"{PREFIX}/{name}" for name in _names(world)}
    assert {name: r["error_kind"] for name, r in rows.items()} == _names(world)
    assert not any(r["retryable"] for r in rows.values())
    assert _archive_keys(endpoint) == before, "nothing is written to a source"

    # The allow-list: another prefix of the archive's bucket, a climb out of it, and a bucket not listed.
    for uri in (f"s3://{ARCHIVE}/2026/other", f"{PREFIX}/../other", "s3://platform-reports/elsewhere"):
        assert main(["scan", uri, "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert f"sources: archive: {PREFIX}" in err and "the storage root s3://platform-reports/cp" in err, err
    # The archive's own credentials are needed: the platform's are refused by its server, before a row is written.
    config.write_text(config.read_text().replace("access_key_id: archive-reader", "access_key_id: platform-key"))
    assert main(["scan", PREFIX, "--config", str(config), "--set", "scan.output=scans/wrong-key"]) == 2
    err = capsys.readouterr().err
    assert f"cannot list {PREFIX}: I/O" in err and "ACCESS_DENIED" in err and "Check the credentials" in err, err
    assert not platform.list_files("scans/wrong-key")


def test_a_local_source_is_bounded_after_its_links_are_resolved(
    attribution_world: World, tmp_path: Path, capsys
) -> None:
    world = attribution_world
    allowed, secret = tmp_path / "photos", tmp_path / "secret"
    allowed.mkdir()
    secret.mkdir()
    for uri in world.good[:3]:
        (allowed / uri.rsplit("/", 1)[1]).write_bytes(world.storage.read_bytes(uri))
    (secret / "key.png").write_bytes(world.storage.read_bytes(world.good[3]))
    os.symlink(secret, allowed / "escape")
    os.symlink(secret / "key.png", allowed / "key.png")
    config = tmp_path / "photos.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"root": world.storage.root},
                "mlflow": {"tracking_uri": world.tracking_uri},
                "sources": [{"name": "photos", "uri": str(allowed)}],
            }
        )
    )
    for outside in (str(allowed / ".." / "secret"), str(secret)):
        assert main(["scan", outside, "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert "is not in an allowed location" in err and f"sources: photos: {allowed}" in err, err
    # Inside the folder by its name, outside once the link is resolved.
    assert main(["scan", str(allowed / "escape"), "--config", str(config)]) == 2
    assert f"is a link to a place outside the storage root {allowed}" in capsys.readouterr().err
    assert main(["scan", str(allowed), "--config", str(config), "--set", "scan.output=scans/photos"]) == 0
    rows = {r["uri"]: r for r in read_parts(world.storage, "scans/photos").to_pylist()}
    assert {u: r["error_kind"] for u, r in rows.items()} == {
        **{str(allowed / u.rsplit("/", 1)[1]): None for u in world.good[:3]},
        str(allowed / "escape"): "outside_root",
        str(allowed / "key.png"): "outside_root",
    }


def test_transient_faults_are_retried_failed_or_kept_retryable(attribution_world: World, s3) -> None:
    world, (endpoint, faults, platform) = attribution_world, s3
    names = _names(world)
    fast = {"read_backoff_s": 0.01}
    try:
        # 503 for a while: each file is read again after a pause, and the scan ends as if nothing happened.
        faults.requests.clear()
        faults.fail_gets[ARCHIVE] = 2
        summary = run_scan(_job(world, platform, "scans/flaky", _archive(endpoint), read_attempts=3, **fast))
        assert summary["images"] == len(names) and summary["errors"] == 2 and summary["retryable"] == 0
        assert sorted(faults.statuses(ARCHIVE)) == [200] * len(names) + [503, 503]

        # 503 for longer than the retries: the scan fails, saying so; no error row is written for those files.
        faults.fail_gets[ARCHIVE] = -1
        with pytest.raises(
            ScanError,
            match=r"could not read s3://archive-bucket/2026/11/\S+: throttled or "
            r"unavailable \(SlowDown\) after 2 tries.*rerun the same command",
        ):
            run_scan(_job(world, platform, "scans/down", _archive(endpoint), read_attempts=2, **fast))
        assert not platform.list_files("scans/down", (".parquet",))

        # ... or, with on_transient=row, every file is a retryable row, and the next run reads them again.
        summary = run_scan(
            _job(world, platform, "scans/down", _archive(endpoint), read_attempts=2, on_transient="row", **fast)
        )
        assert summary["images"] == summary["errors"] == summary["retryable"] == len(names)
        faults.fail_gets.clear()
        summary = run_scan(_job(world, platform, "scans/down", _archive(endpoint), **fast))
        assert summary["run"]["again"] == len(names) and summary["images"] == len(names)
        assert summary["errors"] == 2 and summary["retryable"] == 0
        uris = [r["uri"] for r in _rows(platform, "scans/down")]
        assert len(uris) == len(set(uris)) == len(names), "each file once after the retries"

        # --retry-errors reads the report's error rows again (still what they are); a plain rerun does not.
        assert run_scan(_job(world, platform, "scans/down", _archive(endpoint)))["run"]["written"] == 0
        summary = run_scan(_job(world, platform, "scans/down", _archive(endpoint), retry_errors=True))
        assert summary["run"]["again"] == summary["run"]["written"] == 2 and summary["images"] == len(names)
        assert sorted(r["error_kind"] for r in _rows(platform, "scans/down") if not r["ok"]) == sorted(
            k for k in names.values() if k
        )
    finally:
        faults.fail_gets.clear()


def _rows(storage: Storage, output: str) -> list[dict]:
    return read_parts(storage, storage.uri(output, f"model={TINY_MODEL}-v1")).to_pylist()


def test_two_scans_into_one_report_refuse_the_second(attribution_world: World, capsys) -> None:
    world = attribution_world
    storage = world.storage
    prefix = storage.uri("scans/busy", f"model={TINY_MODEL}-v1")
    with Lease(storage, f"{prefix}/_lease.json", what="scan run elsewhere", ttl_s=60):
        with pytest.raises(LeaseHeldError, match="another writer holds .*: scan run elsewhere"):
            run_scan(world.job("scans/busy"))
        assert (
            main(
                [
                    "scan",
                    "inbox",
                    "--set",
                    f"storage.root={storage.root}",
                    "--set",
                    "scan.output=scans/busy",
                    "--set",
                    f"mlflow.tracking_uri={world.tracking_uri}",
                ]
            )
            == 2
        )
        assert "One writer per output" in capsys.readouterr().err
        assert not storage.list_files(storage.uri("scans/busy"), (".parquet",))
    summary = run_scan(world.job("scans/busy"))  # released: the scan goes ahead, and gives its lease back
    assert summary["images"] == len(world.good) + len(world.bad)
    assert not storage.exists(f"{prefix}/_lease.json")
