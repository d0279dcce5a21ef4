"""read_collection over a local folder and over S3, and decode_rows on its own."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hostile_corpus import IGNORE, build_corpus
from image_samples import collection_files
from PIL import Image

from causalprint.data import IMAGE_SUFFIXES, decode_rows, read_collection
from causalprint.imaging import IntakeConfig, canonicalize
from causalprint.storage import MissingSourceError, OutsideStorageError, Storage, StorageConfig

CFG = IntakeConfig(size=16)


def _fill(storage: Storage, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Write the sample collection under ``prefix``; return expectations keyed by full URI."""
    files, good, bad = collection_files()
    for name, data in files.items():
        storage.write_bytes(storage.uri(prefix, name), data)
    return (
        {storage.uri(prefix, n): a for n, a in good.items()},
        {storage.uri(prefix, n): k for n, k in bad.items()},
    )


def _check_rows(rows: list[dict], good: dict[str, np.ndarray], bad: dict[str, str]) -> None:
    by_uri = {r["uri"]: r for r in rows}
    assert len(rows) == len(by_uri) == len(good) + len(bad), "every file exactly once, nothing else"
    assert set(by_uri) == set(good) | set(bad)
    for uri, kind in bad.items():
        row = by_uri[uri]
        assert (row["ok"], row["error_kind"]) == (False, kind), uri
        assert row["error"] and not row["image"].any()
    for uri, source in good.items():
        row = by_uri[uri]
        assert (row["ok"], row["error_kind"], row["error"]) == (True, "", ""), uri
        assert row["image"].shape == (16, 16, 3) and row["image"].dtype == np.uint8
        expected = canonicalize(Image.fromarray(source), 16)
        if uri.endswith((".png", ".webp")):  # lossless
            np.testing.assert_array_equal(row["image"], expected)
        else:
            assert np.abs(row["image"].astype(int) - expected).mean() < 3, uri


@pytest.fixture()
def local(tmp_path: Path) -> Storage:
    return Storage(StorageConfig(root=str(tmp_path / "store")))


def test_local_collection(ray_session: None, local: Storage) -> None:
    good, bad = _fill(local, "coll")
    _check_rows(read_collection(local, "coll", CFG, batch_size=3).take_all(), good, bad)


def test_s3_collection(ray_session: None, s3_endpoint: str, s3_bucket: str) -> None:
    storage = Storage(StorageConfig(root=f"s3://{s3_bucket}/c", endpoint_url=s3_endpoint))
    good, bad = _fill(storage, "coll")
    rows = read_collection(storage, f"s3://{s3_bucket}/c/coll", CFG).take_all()
    _check_rows(rows, good, bad)
    with pytest.raises(OutsideStorageError):
        read_collection(storage, f"s3://{s3_bucket}/elsewhere", CFG)


def test_explicit_uris_include_missing_files(ray_session: None, local: Storage) -> None:
    _fill(local, "coll")
    wanted = ["coll/good/a.png", "coll/bad/empty.png", "coll/good/a.png", "coll/gone.png"]
    rows = {r["uri"]: r for r in read_collection(local, "coll", CFG, uris=wanted).take_all()}
    assert sorted(rows) == sorted({local.uri(u) for u in wanted})  # duplicate dropped
    assert rows[local.uri("coll/gone.png")]["error_kind"] == "read_failed"
    assert rows[local.uri("coll/bad/empty.png")]["error_kind"] == "empty"
    assert rows[local.uri("coll/good/a.png")]["ok"]


def test_empty_folder_gives_an_empty_dataset_and_a_missing_one_is_refused(ray_session: None, local: Storage) -> None:
    os.makedirs(local.fs_path("empty"))
    assert read_collection(local, "empty", CFG).count() == 0
    with pytest.raises(MissingSourceError, match="no such folder"):
        read_collection(local, "nothing-here", CFG)


def test_every_entry_of_a_hostile_folder_is_one_row(ray_session: None, tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path)
    storage = Storage(StorageConfig(root=str(corpus.root)))
    rows = read_collection(storage, "inbox", CFG, ignore=IGNORE, batch_size=4).take_all()
    kinds = {r["uri"]: r["error_kind"] for r in rows}
    assert len(kinds) == len(rows)
    assert kinds == {corpus.uri(name): kind for name, kind in corpus.kinds.items()}
    for row in rows:
        assert bool(row["ok"]) == (row["error_kind"] == "") and (row["error"] == "") == bool(row["ok"])


def test_decode_rows_never_opens_what_the_listing_refuses(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path)
    storage = Storage(StorageConfig(root=str(corpus.root)))
    refused = ["passwd.png", "zero.png", "pipe.png", "outside-image.png"]
    # Given as plain URIs (as an enrolment's files are), the reads refuse them too: /etc/passwd read would be
    # not_an_image, and an opened FIFO would block this test forever.
    out = decode_rows({"uri": np.array([corpus.uri(n) for n in refused], dtype=object)}, storage, CFG)
    assert list(out["error_kind"]) == ["outside_root", "outside_root", "not_a_file", "outside_root"]


@pytest.mark.parametrize("prefix", ["/etc", "../outside", "coll/../../x", "s3://bucket/x"])
def test_outside_prefix_is_refused_before_reading(local: Storage, prefix: str) -> None:
    with pytest.raises(OutsideStorageError):
        read_collection(local, prefix, CFG)


def test_outside_uri_is_refused(local: Storage) -> None:
    with pytest.raises(OutsideStorageError):
        read_collection(local, "", CFG, uris=["ok.png", "/etc/passwd"])


class _CountingStorage(Storage):
    """Records every read and how many bytes it asked for, to show oversized files are refused from their listed
    size alone, or else from a read bounded at max_bytes + 1."""

    def __init__(self, config: StorageConfig) -> None:
        super().__init__(config)
        self.reads: list[str] = []
        self.limits: dict[str, int | None] = {}

    def read_bytes(self, uri: str) -> bytes:
        self.reads.append(uri)
        self.limits[uri] = None
        return super().read_bytes(uri)

    def read_at_most(self, uri: str, limit: int) -> bytes:
        self.reads.append(uri)
        self.limits[uri] = limit
        return super().read_at_most(uri, limit)


def test_decode_rows_without_ray_never_reads_oversized_files(tmp_path: Path) -> None:
    storage = _CountingStorage(StorageConfig(root=str(tmp_path)))
    _fill(storage, "")
    files = storage.list_files("", IMAGE_SUFFIXES)
    config = IntakeConfig(size=16, max_bytes=10_000)
    big = {f.uri for f in files if f.size > config.max_bytes}
    assert big, "the sample needs at least one file over the limit"
    batch = {"uri": np.array([f.uri for f in files], dtype=object), "size": np.array([f.size for f in files])}
    out = decode_rows(batch, storage, config)
    assert out["image"].shape == (len(files), 16, 16, 3)
    kinds = dict(zip(out["uri"], out["error_kind"], strict=True))
    assert all(kinds[u] == "too_large_bytes" for u in big)
    assert not big & set(storage.reads)
    # Unknown sizes (-1): no size look-up, one read of at most max_bytes + 1 bytes each, with the same result.
    storage.reads.clear()
    out = decode_rows({"uri": batch["uri"], "size": np.full(len(files), -1)}, storage, config)
    assert all(dict(zip(out["uri"], out["error_kind"], strict=True))[u] == "too_large_bytes" for u in big)
    assert sorted(storage.reads) == sorted(f.uri for f in files)
    assert set(storage.limits.values()) == {config.max_bytes + 1}


def test_decode_rows_reports_read_failures(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    out = decode_rows({"uri": np.array([storage.uri("missing.png")], dtype=object)}, storage, CFG)
    assert (bool(out["ok"][0]), out["error_kind"][0]) == (False, "read_failed")
    assert "missing.png" in out["error"][0]
