"""The scan streams its source's listing (issue 26, scale): it reads the listing a page at a time and runs the files
a chunk at a time, so the driver starts on the first chunk before the listing ends and never holds the whole of
it; each image costs one GET and no HEAD.

The source is an archive prefix on moto's S3 server on 127.0.0.1 (the scale benchmark's layout and sorted listing),
behind a recorder of every request."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from s3_faults import RequestRecorder, wsgi_s3
from scan_world import World

from causalprint.benchmarks.s3_archive import archive_key, indexed_listing, populate
from causalprint.data.parts import read_parts
from causalprint.scan import job as scan_job
from causalprint.storage import listing as listing_module
from causalprint.storage.sources import SourceConfig

pytestmark = pytest.mark.slow

BUCKET = "scan-stream"
OBJECTS = 60
PAGE = 10
CHUNK = 20


class Recorder(RequestRecorder):
    def pages(self) -> int:
        """The listing's page requests so far (the source's existence check, with a delimiter, apart)."""
        return sum(r.method == "GET" and "list-type" in r.query and "delimiter" not in r.query for r in self.requests)

    def on_objects(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.under(f"/{BUCKET}/objects/")]


@pytest.fixture(scope="module")
def archive() -> Iterator[tuple[str, Recorder]]:
    with wsgi_s3(Recorder) as (endpoint, recorder), indexed_listing():
        populate(BUCKET, OBJECTS, OBJECTS)
        yield endpoint, recorder


def test_the_scan_runs_chunks_while_the_listing_goes_on(
    attribution_world: World, archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, (endpoint, recorder) = attribution_world, archive
    alive: weakref.WeakSet = weakref.WeakSet()

    class Tracked(listing_module.Entry):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            alive.add(self)

    monkeypatch.setattr(listing_module, "Entry", Tracked)
    built: list[dict[str, int]] = []
    original = scan_job.build_dataset

    def build_dataset(storage, job, pending, **kwargs):
        built.append({"chunk": len(pending), "pages": recorder.pages(), "alive": len(alive)})
        return original(storage, job, pending, **kwargs)

    monkeypatch.setattr(scan_job, "build_dataset", build_dataset)
    prefix = f"s3://{BUCKET}/objects"
    job = world.job("scans/streaming", source=prefix, batch_size=8)
    job = job.model_copy(
        update={
            "sources": (
                SourceConfig(
                    name="stream", uri=prefix, endpoint_url=endpoint, access_key_id="k", secret_access_key="s"
                ),
            ),
            "scan": job.scan.model_copy(update={"list_page_size": PAGE, "chunk_size": CHUNK}),
        }
    )
    recorder.requests.clear()
    summary = scan_job.run_scan(job)

    assert [b["chunk"] for b in built] == [CHUNK] * (OBJECTS // CHUNK)
    assert built[0]["pages"] == CHUNK // PAGE < OBJECTS // PAGE, "the first chunk runs before the listing ends"
    # The chunk being scanned, the next one being gathered and one page: never the whole listing.
    assert max(b["alive"] for b in built) <= 2 * CHUNK + PAGE < OBJECTS, "the driver never holds the whole listing"
    assert summary["run"]["listed"] == summary["run"]["written"] == summary["images"] == OBJECTS
    assert summary["run"]["largest_chunk"] == CHUNK
    uris = read_parts(world.storage, summary["report"], columns=["uri"])["uri"].to_pylist()
    assert sorted(uris) == [f"s3://{BUCKET}/{archive_key(i, OBJECTS)}" for i in range(OBJECTS)]

    # Per image: one GET, no HEAD.
    objects = recorder.on_objects()
    assert not [r for r in objects if r[0] != "GET"], "no HEAD, nothing but GETs"
    assert sorted(p for _m, p in objects) == sorted(f"/{BUCKET}/{archive_key(i, OBJECTS)}" for i in range(OBJECTS))

    # A rerun lists again, page by page, and runs nothing.
    built.clear()
    again = scan_job.run_scan(job)
    assert not built
    assert again["run"]["listed"] == again["run"]["skipped"] == OBJECTS and again["run"]["written"] == 0
