"""Local-disk storage: round-trips, listings, atomic writes, deletes, pickling."""

from __future__ import annotations

import json
import os
import pickle
import stat

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from causalprint.storage import FileInfo, Storage, StorageConfig, StorageError


@pytest.fixture()
def storage(tmp_path) -> Storage:
    return Storage(StorageConfig(root=str(tmp_path / "root")))


def test_bytes_json_parquet_round_trip(storage: Storage) -> None:
    storage.write_bytes("a/b/c.bin", b"\x00\x01payload")
    assert storage.read_bytes("a/b/c.bin") == b"\x00\x01payload"
    assert storage.size("a/b/c.bin") == 9
    assert storage.exists(storage.uri("a/b/c.bin")) and storage.exists("a")
    assert not storage.exists("a/nope")

    obj = {"z": 1, "a": [1.5, "é", None]}
    storage.write_json("meta.json", obj)
    assert storage.read_json("meta.json") == obj
    with open(storage.fs_path("meta.json"), encoding="utf-8") as handle:
        text = handle.read()
    assert text == json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    table = pa.table({"x": [1, 2, 3], "s": ["a", "b", None]})
    storage.write_parquet("t/part.parquet", table)
    assert storage.read_parquet("t/part.parquet").equals(table)
    assert pq.read_table(storage.fs_path("t/part.parquet"), filesystem=storage.filesystem).equals(table)


def test_overwrite_replaces_content_and_file_mode_follows_umask(storage: Storage) -> None:
    storage.write_bytes("f", b"old")
    storage.write_bytes("f", b"new")
    assert storage.read_bytes("f") == b"new"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(storage.fs_path("f")).st_mode) == 0o666 & ~mask


def test_missing_files_raise_file_not_found(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("missing.bin")
    with pytest.raises(FileNotFoundError):
        storage.size("missing.bin")
    with pytest.raises(FileNotFoundError):
        storage.read_json("missing.json")


def test_writing_the_root_itself_is_refused(storage: Storage) -> None:
    with pytest.raises(StorageError, match="root itself"):
        storage.write_bytes("", b"x")


def test_list_files_filters_sorts_and_skips_temp_files(storage: Storage) -> None:
    for rel in ["img/b.PNG", "img/a.png", "img/sub/c.jpg", "img/notes.txt", "other/x.png"]:
        storage.write_bytes(rel, rel.encode())
    # An in-flight atomic write of another process.
    open(os.path.join(storage.fs_path("img"), ".d.png.abc123.tmp"), "wb").close()

    everything = storage.list_files("img")
    assert [storage.relative(f.uri) for f in everything] == ["img/a.png", "img/b.PNG", "img/notes.txt", "img/sub/c.jpg"]
    assert everything[0] == FileInfo(uri=storage.uri("img/a.png"), size=len(b"img/a.png"))

    images = storage.list_files(storage.uri("img"), suffixes=(".png", ".JPG"))
    assert [storage.relative(f.uri) for f in images] == ["img/a.png", "img/b.PNG", "img/sub/c.jpg"]
    assert len(storage.list_files("")) == 5
    assert storage.list_files("nowhere") == []
    assert [f.uri for f in storage.list_files("img/a.png")] == [storage.uri("img/a.png")]


def test_exception_in_open_atomic_leaves_nothing(storage: Storage) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with storage.open_atomic("out/data.bin") as handle:
            handle.write(b"half")
            raise RuntimeError("boom")
    assert not storage.exists("out/data.bin")
    assert os.listdir(storage.fs_path("out")) == []  # no temp file left behind either


def test_failed_overwrite_keeps_the_old_object(storage: Storage) -> None:
    storage.write_bytes("keep.bin", b"complete")
    with pytest.raises(KeyboardInterrupt):
        with storage.open_atomic("keep.bin") as handle:
            handle.write(b"partial")
            raise KeyboardInterrupt
    assert storage.read_bytes("keep.bin") == b"complete"


def test_temp_file_is_invisible_while_writing(storage: Storage) -> None:
    with storage.open_atomic("w/result.json") as handle:
        handle.write(b"{}")
        assert not storage.exists("w/result.json")
        assert storage.list_files("w") == []
    assert storage.read_bytes("w/result.json") == b"{}"


def test_delete_and_delete_prefix(storage: Storage) -> None:
    for rel in ["runs/1/a", "runs/1/sub/b", "runs/10/c", "runs/1x"]:
        storage.write_bytes(rel, b"x")
    storage.delete("runs/10/c")
    storage.delete("runs/10/c")  # missing is fine
    assert not storage.exists("runs/10/c")
    storage.delete_prefix("runs/1")
    storage.delete_prefix("runs/1")
    assert [storage.relative(f.uri) for f in storage.list_files("runs")] == ["runs/1x"]
    with pytest.raises(StorageError, match="whole storage root"):
        storage.delete_prefix("")


def test_ensure_bucket_makes_the_local_root(storage: Storage) -> None:
    assert not os.path.isdir(storage.root)
    storage.ensure_bucket()
    assert os.path.isdir(storage.root)


def test_pickle_round_trip(storage: Storage) -> None:
    storage.write_bytes("p.bin", b"pickled")
    assert storage.filesystem is not None  # built before pickling, must not travel
    clone = pickle.loads(pickle.dumps(storage))
    assert clone.root == storage.root
    assert clone.read_bytes("p.bin") == b"pickled"
