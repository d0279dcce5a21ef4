"""The allow-list of read-only sources: a URI is read inside the storage root or inside one listed source, with
that source's own endpoint and credentials; anything else is refused naming the allowed locations, and a local
source applies its bound after symbolic links are resolved."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from pydantic import ValidationError
from s3_faults import FaultyS3, faulty_s3

from causalprint.storage import OutsideStorageError, Storage, StorageConfig, list_source
from causalprint.storage.sources import OutsideSourcesError, SourceConfig, check_sources, open_source


@pytest.fixture()
def local(tmp_path: Path) -> tuple[Storage, SourceConfig, Path]:
    """A storage root, an allowed folder beside it, and a secret folder that neither contains."""
    root, allowed, secret = tmp_path / "root", tmp_path / "allowed", tmp_path / "secret"
    for folder in (root, allowed / "sub", secret):
        folder.mkdir(parents=True)
    (allowed / "sub" / "a.png").write_bytes(b"image")
    (secret / "key.png").write_bytes(b"secret")
    os.symlink(secret, allowed / "escape")
    os.symlink(secret / "key.png", allowed / "sub" / "link.png")
    return Storage(StorageConfig(root=str(root))), SourceConfig(name="photos", uri=str(allowed)), tmp_path


def test_a_uri_inside_the_root_is_read_there_and_one_in_a_source_from_the_source(local) -> None:
    storage, photos, tmp = local
    opened = open_source(storage, [photos], "inbox")
    assert opened.storage is storage and opened.uri == storage.uri("inbox") and opened.name is None
    opened = open_source(storage, [photos], str(tmp / "allowed" / "sub"))
    assert opened.storage.root == str(tmp / "allowed") and opened.label == "photos/sub" and opened.name == "photos"
    assert opened.storage.read_bytes(f"{opened.uri}/a.png") == b"image"


def test_a_local_uri_outside_every_location_is_refused_naming_them(local) -> None:
    storage, photos, tmp = local
    for uri in (
        str(tmp / "secret"),
        str(tmp / "allowed" / ".." / "secret"),
        "../secret",
        "/etc/passwd",
        f"file://{tmp}/allowed/../secret",
    ):
        with pytest.raises(OutsideSourcesError) as refused:
            open_source(storage, [photos], uri)
        assert f"the storage root {storage.root}; sources: photos: {tmp / 'allowed'}" in str(refused.value)
    with pytest.raises(OutsideStorageError, match="none configured"):
        open_source(storage, [], str(tmp / "allowed"))


def test_a_link_out_of_a_local_source_is_never_read(local) -> None:
    storage, photos, tmp = local
    # The URI names a place inside the folder; resolved, the link leads out of it.
    escape = open_source(storage, [photos], str(tmp / "allowed" / "escape"))
    with pytest.raises(OutsideStorageError, match="outside"):
        list_source(escape.storage, escape.uri)
    with pytest.raises(OutsideStorageError, match="outside"):
        escape.storage.read_at_most(f"{escape.uri}/key.png", 100)
    # Walked from the source's top, both links are error rows that are never opened.
    listing = list_source(escape.storage, str(tmp / "allowed"))
    problems = {Path(e.uri).relative_to(tmp / "allowed").as_posix(): e.problem for e in listing.entries}
    assert problems == {"escape": "outside_root", "sub/a.png": "", "sub/link.png": "outside_root"}


def test_source_configs_are_checked() -> None:
    with pytest.raises(ValidationError, match="lower-case"):
        SourceConfig(name="Bad Name", uri="/x")
    with pytest.raises(ValidationError, match="set together"):
        SourceConfig(name="a", uri="s3://b/p", access_key_id="k")
    with pytest.raises(ValidationError, match="uri"):
        SourceConfig(name="a", uri="http://b/p")
    with pytest.raises(ValueError, match="more than once: a"):
        check_sources([SourceConfig(name="a", uri="/x"), SourceConfig(name="a", uri="/y")])
    assert "hunter2" not in repr(SourceConfig(name="a", uri="s3://b/p", access_key_id="k", secret_access_key="hunter2"))


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, FaultyS3]]:
    with faulty_s3() as server:
        yield server


def test_an_s3_source_is_read_with_its_own_endpoint_and_credentials(s3: tuple[str, FaultyS3]) -> None:
    endpoint, server = s3
    admin = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="archive-admin",
        aws_secret_access_key="x",
    )
    for bucket in ("archive-src", "platform-src"):
        admin.create_bucket(Bucket=bucket)
    admin.put_object(Bucket="archive-src", Key="2026/11/a.png", Body=b"image")
    admin.put_object(Bucket="archive-src", Key="2026/other/b.png", Body=b"other")
    server.keys["archive-src"] = "archive-reader"  # the archive answers its own key only
    try:
        storage = Storage(StorageConfig(root="s3://platform-src/cp", endpoint_url=endpoint))
        archive = SourceConfig(
            name="archive",
            uri="s3://archive-src/2026/11",
            endpoint_url=endpoint,
            access_key_id="archive-reader",
            secret_access_key="x",
        )
        opened = open_source(storage, [archive], "s3://archive-src/2026/11")
        assert opened.label == "archive" and opened.uri == "s3://archive-src/2026/11"
        assert [e.uri for e in list_source(opened.storage, opened.uri).entries] == ["s3://archive-src/2026/11/a.png"]
        assert opened.storage.read_at_most("s3://archive-src/2026/11/a.png", 100) == b"image"
        # The platform's own credentials are not the archive's: the archive refuses them.
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError, match="InvalidAccessKeyId"):
            Storage(StorageConfig(root="s3://archive-src/2026/11", endpoint_url=endpoint)).read_at_most(
                "s3://archive-src/2026/11/a.png", 100
            )
        # Another prefix of the same bucket, another bucket, and a climb out of the prefix are refused.
        for uri in (
            "s3://archive-src/2026/other",
            "s3://archive-src/2026/11/../other",
            "s3://platform-src/x",
            "s3://elsewhere/2026/11",
        ):
            with pytest.raises(OutsideSourcesError, match="sources: archive: s3://archive-src/2026/11"):
                open_source(storage, [archive], uri)
    finally:
        server.keys.clear()
