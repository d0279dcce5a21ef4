"""Addressing and the containment boundary, plus config validation: no I/O, no server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from causalprint.config import ConfigError, build_config
from causalprint.storage import OutsideStorageError, Storage, StorageConfig, StorageError
from causalprint.storage.connect import s3_settings
from causalprint.storage.uri import is_temp_name


@pytest.fixture()
def local(tmp_path) -> Storage:
    return Storage(StorageConfig(root=str(tmp_path / "root")))


@pytest.fixture()
def s3() -> Storage:
    # Building a Storage never connects, so no server is needed here.
    return Storage(StorageConfig(root="s3://bucket/pre/fix/", endpoint_url="http://127.0.0.1:1"))


# -- local addressing ----------------------------------------------------------------------------------------


def test_local_root_is_absolute_and_normalised(tmp_path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path) + "/a/./b/../root/"))
    assert storage.root == str(tmp_path / "a" / "root")
    assert not storage.is_s3


def test_relative_root_resolves_against_cwd_at_construction(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = Storage(StorageConfig())
    assert storage.root == str(tmp_path / ".causalprint")


def test_file_uri_root(tmp_path) -> None:
    storage = Storage(StorageConfig(root=f"file://{tmp_path}/r"))
    assert storage.root == f"{tmp_path}/r"


def test_local_uri_resolve_relative_round_trip(local: Storage) -> None:
    uri = local.uri("runs", "7/metrics.json")
    assert uri == local.root + "/runs/7/metrics.json"
    assert local.resolve("runs//7/./metrics.json") == uri
    assert local.resolve(uri) == uri
    assert local.resolve(f"file://{uri}") == uri
    assert local.relative(uri) == "runs/7/metrics.json"
    assert local.relative(local.root) == ""
    assert local.fs_path(uri) == uri
    assert local.uri_from_fs_path(local.fs_path(uri)) == uri
    assert local.uri() == local.root


@pytest.mark.parametrize(
    "bad",
    [
        "..",
        "../sibling",
        "a/../../x",
        "a/../b",  # even harmless-looking '..' is refused: one rule, no resolution games
        "/etc/passwd",
        "file:///etc/passwd",
        "http://x",
        "https://example.com/root/a",
        "s3://bucket/a",
        "gs://bucket/a",
    ],
)
def test_local_resolve_rejects_escapes(local: Storage, bad: str) -> None:
    with pytest.raises(OutsideStorageError):
        local.resolve(bad)


def test_local_rejects_sibling_with_shared_name_prefix(local: Storage) -> None:
    with pytest.raises(OutsideStorageError):
        local.resolve(local.root + "x/file")
    with pytest.raises(OutsideStorageError):
        local.resolve(local.root + "/../root/a")


def test_local_rejects_remote_file_host_and_nul(local: Storage) -> None:
    with pytest.raises(StorageError):
        local.resolve(f"file://evil{local.root}/a")
    with pytest.raises(StorageError):
        local.resolve("a\x00b")


@pytest.mark.parametrize("part", ["..", "a/../..", "/etc", "s3://bucket/x"])
def test_uri_parts_may_not_escape(local: Storage, part: str) -> None:
    with pytest.raises(OutsideStorageError):
        local.uri("ok", part)


def test_every_operation_checks_containment(local: Storage) -> None:
    ops = [
        lambda: local.read_bytes("/etc/passwd"),
        lambda: local.write_bytes("../x", b""),
        lambda: local.exists("/etc/passwd"),
        lambda: local.list_files("/etc"),
        lambda: local.delete("../x"),
        lambda: local.delete_prefix("/tmp"),
        lambda: local.fs_path("/etc/passwd"),
        lambda: local.uri_from_fs_path("/etc/passwd"),
    ]
    for op in ops:
        with pytest.raises(OutsideStorageError):
            op()


# -- S3 addressing -------------------------------------------------------------------------------------------


def test_s3_uri_resolve_relative_fs_path_round_trip(s3: Storage) -> None:
    assert s3.is_s3
    assert s3.root == "s3://bucket/pre/fix"
    uri = s3.uri("data", "a.parquet")
    assert uri == "s3://bucket/pre/fix/data/a.parquet"
    assert s3.resolve("data/a.parquet") == uri
    assert s3.resolve("S3://bucket/pre/fix//data/a.parquet") == uri
    assert s3.relative(uri) == "data/a.parquet"
    assert s3.fs_path(uri) == "bucket/pre/fix/data/a.parquet"
    assert s3.uri_from_fs_path("bucket/pre/fix/data/a.parquet") == uri
    assert s3.fs_path("") == "bucket/pre/fix"


def test_s3_root_without_prefix() -> None:
    storage = Storage(StorageConfig(root="s3://bucket"))
    assert storage.root == "s3://bucket"
    assert storage.uri("a") == "s3://bucket/a"
    assert storage.resolve("s3://bucket/a/b") == "s3://bucket/a/b"
    assert storage.fs_path("a/b") == "bucket/a/b"
    with pytest.raises(OutsideStorageError):
        storage.resolve("s3://bucket2/a")


@pytest.mark.parametrize(
    "bad",
    [
        "s3://other/pre/fix/a",
        "s3://bucket/a",
        "s3://bucket/pre/fixed/a",
        "s3://bucket/pre/fix/../../a",
        "../a",
        "/etc/passwd",
        "file:///pre/fix/a",
        "http://bucket/pre/fix/a",
        "gs://bucket/pre/fix/a",
    ],
)
def test_s3_resolve_rejects_escapes(s3: Storage, bad: str) -> None:
    with pytest.raises(OutsideStorageError):
        s3.resolve(bad)


def test_s3_uri_from_fs_path_checks_containment(s3: Storage) -> None:
    with pytest.raises(OutsideStorageError):
        s3.uri_from_fs_path("other/pre/fix/a")


def test_temp_names() -> None:
    assert is_temp_name("/x/.a.json.k2j3.tmp")
    assert not is_temp_name("/x/a.tmp")
    assert not is_temp_name("/x/.hidden")


# -- config --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "root", ["", "   ", "http://x/y", "gs://bucket/x", "s3://", "s3:///x", "s3:/bucket", "file://host/x"]
)
def test_bad_root_is_rejected_naming_root(root: str) -> None:
    with pytest.raises(ValidationError) as info:
        StorageConfig(root=root)
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [("root",)]
    assert "root" in errors[0]["msg"]


def test_bad_root_through_build_config_names_key() -> None:
    with pytest.raises(ConfigError, match=r"root: .*unsupported scheme 'http'"):
        build_config(StorageConfig, {"root": "http://x"}, environ={})


def test_bad_endpoint_and_half_credentials_are_rejected() -> None:
    with pytest.raises(ValidationError, match="endpoint_url") as info:
        StorageConfig(root="s3://b", endpoint_url="localhost:9000")
    assert info.value.errors()[0]["loc"] == ("endpoint_url",)
    with pytest.raises(ValidationError, match="access_key_id and secret_access_key"):
        StorageConfig(root="s3://b", access_key_id="k")
    with pytest.raises(ValidationError, match="unknown|extra"):
        StorageConfig(root="s3://b", bucket="x")  # type: ignore[call-arg]


def test_secrets_are_not_shown() -> None:
    config = StorageConfig(root="s3://b", access_key_id="AKIA123", secret_access_key="s3cr3t")
    assert "s3cr3t" not in repr(config) and "AKIA123" not in repr(config)


def test_endpoint_and_region_precedence(monkeypatch) -> None:
    env = {"AWS_ENDPOINT_URL": "http://generic:1", "AWS_ENDPOINT_URL_S3": "http://s3only:2", "AWS_REGION": "eu-west-3"}
    assert s3_settings(StorageConfig(root="s3://b"), env).endpoint_url == "http://s3only:2"
    assert s3_settings(StorageConfig(root="s3://b"), {"AWS_ENDPOINT_URL": "http://generic:1/"}).endpoint_url == (
        "http://generic:1"
    )
    assert s3_settings(StorageConfig(root="s3://b", endpoint_url="https://cfg:3"), env).endpoint_url == "https://cfg:3"
    assert s3_settings(StorageConfig(root="s3://b"), env).region == "eu-west-3"
    assert s3_settings(StorageConfig(root="s3://b"), {"AWS_DEFAULT_REGION": "ap-south-1"}).region == "ap-south-1"
    assert s3_settings(StorageConfig(root="s3://b", region="us-west-2"), env).region == "us-west-2"
    assert s3_settings(StorageConfig(root="s3://b"), {}).region == "us-east-1"
    assert s3_settings(StorageConfig(root="s3://b"), {}).endpoint_url is None

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://from-env:9")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert Storage(StorageConfig(root="s3://b")).endpoint_url == "http://from-env:9"


def test_bad_endpoint_in_environment_names_variable() -> None:
    with pytest.raises(StorageError, match="AWS_ENDPOINT_URL_S3"):
        s3_settings(StorageConfig(root="s3://b"), {"AWS_ENDPOINT_URL_S3": "minio:9000"})


def test_boto3_client_needs_s3(local: Storage) -> None:
    with pytest.raises(StorageError, match="S3 root"):
        local.boto3_client()
