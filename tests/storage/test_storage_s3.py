"""S3 storage against the session's real S3-protocol server (moto on 127.0.0.1)."""

from __future__ import annotations

import pickle
import uuid

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from causalprint.storage import Storage, StorageConfig


@pytest.fixture()
def storage(s3_endpoint: str, s3_bucket: str) -> Storage:
    return Storage(StorageConfig(root=f"s3://{s3_bucket}/pre", endpoint_url=s3_endpoint))


def _keys(endpoint: str, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_bytes_json_parquet_round_trip(storage: Storage, s3_endpoint: str, s3_bucket: str) -> None:
    storage.write_bytes("a/b.bin", b"\x00bytes")
    assert storage.read_bytes(f"s3://{s3_bucket}/pre/a/b.bin") == b"\x00bytes"
    assert storage.size("a/b.bin") == 6
    assert storage.exists("a/b.bin") and storage.exists("a") and not storage.exists("a/c.bin")

    storage.write_json("m.json", {"b": 2, "a": [1]})
    assert storage.read_json("m.json") == {"a": [1], "b": 2}
    assert storage.read_bytes("m.json").startswith(b'{\n  "a"')

    table = pa.table({"x": list(range(100)), "y": [str(i) for i in range(100)]})
    storage.write_parquet("t/p.parquet", table)
    assert storage.read_parquet("t/p.parquet").equals(table)
    # Objects land exactly at root-prefix + key, with no directory-marker objects.
    assert _keys(s3_endpoint, s3_bucket) == ["pre/a/b.bin", "pre/m.json", "pre/t/p.parquet"]


def test_pyarrow_reads_fs_path_with_storage_filesystem(storage: Storage) -> None:
    table = pa.table({"v": [1.0, 2.0]})
    uri = storage.uri("ray/part-0.parquet")
    storage.write_parquet(uri, table)
    assert pq.read_table(storage.fs_path(uri), filesystem=storage.filesystem).equals(table)


def test_missing_object_raises_file_not_found(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("nope.bin")
    with pytest.raises(FileNotFoundError):
        storage.size("nope.bin")


def test_list_files_filters_sorts_and_skips_temp(storage: Storage, s3_endpoint: str, s3_bucket: str) -> None:
    for rel in ["img/b.PNG", "img/a.png", "img/sub/c.jpg", "img/readme.md", "imgs/x.png"]:
        storage.write_bytes(rel, b"123")
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").put_object(
        Bucket=s3_bucket, Key="pre/img/.a.png.x1.tmp", Body=b""
    )
    images = storage.list_files("img", suffixes=(".png", ".jpg"))
    assert [storage.relative(f.uri) for f in images] == ["img/a.png", "img/b.PNG", "img/sub/c.jpg"]
    assert images[0].uri == f"s3://{s3_bucket}/pre/img/a.png" and images[0].size == 3
    assert len(storage.list_files("img")) == 4
    assert storage.list_files("missing/prefix") == []


def test_exception_in_open_atomic_leaves_no_object(storage: Storage, s3_endpoint: str, s3_bucket: str) -> None:
    storage.write_bytes("keep.bin", b"complete")
    with pytest.raises(RuntimeError):
        with storage.open_atomic("new.bin") as handle:
            handle.write(b"half")
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        with storage.open_atomic("keep.bin") as handle:
            handle.write(b"partial")
            raise RuntimeError("boom")
    assert _keys(s3_endpoint, s3_bucket) == ["pre/keep.bin"]
    assert storage.read_bytes("keep.bin") == b"complete"


def test_object_appears_only_after_open_atomic_exits(storage: Storage) -> None:
    with storage.open_atomic("late.bin") as handle:
        handle.write(b"x" * 1000)
        assert not storage.exists("late.bin")
    assert storage.size("late.bin") == 1000


def test_large_open_atomic_goes_multipart(storage: Storage) -> None:
    blob = bytes(range(256)) * (9 * 1024 * 4)  # 9 MiB: above boto3's 8 MiB multipart threshold
    with storage.open_atomic("big.bin") as handle:
        handle.write(blob)
    assert storage.read_bytes("big.bin") == blob


def test_delete_and_delete_prefix(storage: Storage, s3_endpoint: str, s3_bucket: str) -> None:
    for rel in ["runs/1/a", "runs/1/sub/b", "runs/10/c", "runs/1x"]:
        storage.write_bytes(rel, b"x")
    storage.delete("runs/10/c")
    storage.delete("runs/10/c")
    storage.delete_prefix("runs/1")
    storage.delete_prefix("runs/1")
    assert _keys(s3_endpoint, s3_bucket) == ["pre/runs/1x"]


def test_endpoint_from_aws_endpoint_url_env(s3_endpoint: str, s3_bucket: str, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    storage = Storage(StorageConfig(root=f"s3://{s3_bucket}"))
    assert storage.endpoint_url == s3_endpoint
    storage.write_bytes("env.txt", b"via env")
    assert storage.read_bytes("env.txt") == b"via env"
    assert [f.uri for f in storage.list_files("")] == [f"s3://{s3_bucket}/env.txt"]


def test_credentials_from_config_reach_both_clients(s3_endpoint: str, s3_bucket: str) -> None:
    storage = Storage(
        StorageConfig(
            root=f"s3://{s3_bucket}/c",
            endpoint_url=s3_endpoint,
            access_key_id="cfg-key",
            secret_access_key="cfg-secret",
        )
    )
    assert storage.boto3_client()._request_signer._credentials.access_key == "cfg-key"
    storage.write_parquet("x.parquet", pa.table({"a": [1]}))
    assert storage.read_parquet("x.parquet").num_rows == 1


def test_pickle_round_trip(storage: Storage) -> None:
    storage.write_bytes("p.bin", b"pickled")
    storage.boto3_client()
    assert storage.filesystem is not None  # live clients exist and must not travel
    payload = pickle.dumps(storage)
    assert len(payload) < 2000
    clone = pickle.loads(payload)
    assert clone.read_bytes("p.bin") == b"pickled"
    clone.write_bytes("q.bin", b"from clone")
    assert storage.read_bytes("q.bin") == b"from clone"


def test_ensure_bucket_creates_missing_bucket(s3_endpoint: str) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:10]}"
    storage = Storage(StorageConfig(root=f"s3://{bucket}/p", endpoint_url=s3_endpoint))
    storage.ensure_bucket()
    storage.ensure_bucket()  # idempotent
    storage.write_bytes("k", b"v")
    assert _keys(s3_endpoint, bucket) == ["p/k"]
