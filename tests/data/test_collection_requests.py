"""Per-image requests on S3: one GET per image and no HEAD (issue 26), counted by a real S3-protocol server.

The server is moto's, on 127.0.0.1, behind a WSGI wrapper that records every request it answers, whoever sent
it (boto3 or pyarrow), so a size look-up by any client would show.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from image_samples import collection_files
from s3_faults import RequestRecorder, wsgi_s3

from causalprint.data import decode_rows
from causalprint.imaging import IntakeConfig
from causalprint.storage import Storage, StorageConfig, list_source


@pytest.fixture(scope="module")
def counted_s3() -> Iterator[tuple[str, RequestRecorder]]:
    with wsgi_s3(RequestRecorder) as started:
        yield started


@pytest.fixture()
def filled(counted_s3: tuple[str, RequestRecorder]) -> tuple[Storage, RequestRecorder, dict[str, str], dict[str, int]]:
    """The sample collection (good images, broken ones, an empty file) plus one oversized image on the counted
    server; returns the storage, the recorder, the expected error kind of each bad URI and every file's size."""
    endpoint, recorder = counted_s3
    storage = Storage(StorageConfig(root="s3://requests/c", endpoint_url=endpoint))
    storage.ensure_bucket()
    files, _good, bad = collection_files()
    files = {**files, "huge.png": next(d for n, d in files.items() if n.endswith(".png")) + bytes(MAX_BYTES)}
    for name, data in files.items():
        storage.write_bytes(storage.uri("coll", name), data)
    expected = {storage.uri("coll", n): k for n, k in bad.items()}
    expected[storage.uri("coll", "huge.png")] = "too_large_bytes"
    sizes = {storage.uri("coll", n): len(d) for n, d in files.items()}
    assert max(len(d) for n, d in files.items() if n != "huge.png") <= MAX_BYTES
    return storage, recorder, expected, sizes


MAX_BYTES = 200_000
CONFIG = IntakeConfig(size=16, max_bytes=MAX_BYTES)


def _decode(storage: Storage, uris: list[str], sizes: list[int]) -> dict[str, str]:
    batch = {"uri": np.array(uris, dtype=object), "size": np.array(sizes, dtype=np.int64)}
    out = decode_rows(batch, storage, CONFIG)
    return dict(zip(out["uri"], out["error_kind"], strict=True))


def test_unknown_sizes_cost_one_ranged_get_per_image(filled) -> None:
    """Extraction's path (explicit URIs, sizes unknown): one GET each, asking for at most max_bytes + 1."""
    storage, recorder, expected, sizes = filled
    uris = sorted(sizes)
    recorder.requests.clear()
    kinds = _decode(storage, uris, [-1] * len(uris))
    assert {u: k for u, k in kinds.items() if k} == expected
    requests = recorder.under("/requests/")
    assert not [r for r in requests if r.method != "GET"], "no HEAD, nothing but GETs"
    keys = sorted(r.path.removeprefix("/requests/") for r in requests)
    assert keys == sorted(f"c/{storage.relative(u)}" for u in uris), "exactly one GET per image"
    assert {r.range for r in requests} == {f"bytes=0-{MAX_BYTES}"}


def test_listed_sizes_refuse_an_oversized_image_without_a_request(filled) -> None:
    """The scan's path (a listing with sizes): the oversized file is refused unread, the others cost one GET."""
    storage, recorder, expected, _sizes = filled
    entries = list_source(storage, "coll").entries
    recorder.requests.clear()
    kinds = _decode(storage, [e.uri for e in entries], [e.size for e in entries])
    assert {u: k for u, k in kinds.items() if k} == expected
    requests = recorder.under("/requests/")
    huge = storage.uri("coll", "huge.png")
    assert [r.method for r in requests] == ["GET"] * (len(entries) - 1)
    assert f"/requests/c/{storage.relative(huge)}" not in {r.path for r in requests}


def test_a_missing_object_is_one_get_and_a_read_failed_row(filled) -> None:
    storage, recorder, _expected, _sizes = filled
    recorder.requests.clear()
    missing = storage.uri("coll", "gone.png")
    assert _decode(storage, [missing], [-1]) == {missing: "read_failed"}
    assert [r.method for r in recorder.under("/requests/")] == ["GET"]
