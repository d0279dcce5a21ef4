"""An S3 listing streams: a page per request, made when the caller asks for it, so a caller that works page by page
never holds the whole listing (issue 26, scale). The server is moto's on 127.0.0.1, filled in-process with the
scale benchmark's archive layout, behind a recorder of its list requests."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from s3_faults import wsgi_s3

from causalprint.benchmarks.s3_archive import archive_key, indexed_listing, populate
from causalprint.storage import MissingSourceError, SourcePages, Storage, StorageConfig, list_source
from causalprint.storage import listing as listing_module

BUCKET = "stream-listing"
OBJECTS = 1000
SHARD = 250
PAGE = 100


@dataclass
class Lists:
    """The WSGI app in front of moto (which answers flat listings from the scale benchmark's sorted index of the
    keys, as S3 pages, instead of sorting the bucket on each request): counts the listing's page requests (a GET
    of the bucket with ``list-type``, no delimiter; the source's existence check, a HEAD and a one-key delimited
    list, is apart)."""

    app: Any
    count: int = 0

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if environ["REQUEST_METHOD"] == "GET" and path.strip("/") == BUCKET and "list-type" in query:
            self.count += "delimiter" not in query
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def archive() -> Iterator[tuple[Storage, Lists]]:
    with wsgi_s3(Lists) as (endpoint, lists), indexed_listing():
        populate(BUCKET, OBJECTS, SHARD)
        storage = Storage(StorageConfig(root=f"s3://{BUCKET}/objects", endpoint_url=endpoint))
        storage.write_bytes(storage.uri("000", "_DONE.json"), b"{}")  # ignored by pattern
        yield storage, lists


@pytest.fixture()
def live_entries(monkeypatch: pytest.MonkeyPatch) -> weakref.WeakSet:
    """Every listing entry made while the test runs, for as long as something holds it."""
    alive: weakref.WeakSet = weakref.WeakSet()

    class Tracked(listing_module.Entry):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            alive.add(self)

    monkeypatch.setattr(listing_module, "Entry", Tracked)
    return alive


def test_pages_are_listed_one_request_at_a_time_as_they_are_read(archive) -> None:
    storage, lists = archive
    before = lists.count
    pages = SourcePages(storage, storage.root, ignore=("_DONE.json",), page_size=PAGE)
    assert lists.count - before == 1, "built up to its first page, no further"
    seen: list[str] = []
    for number, page in enumerate(pages, start=1):
        assert len(page) <= PAGE
        assert lists.count - before == number, "each page is one request, made when it is asked for"
        seen.extend(entry.uri for entry in page)
    assert pages.listed == len(seen) == OBJECTS
    assert seen == sorted(seen) == [f"s3://{BUCKET}/{archive_key(i, SHARD)}" for i in range(OBJECTS)]
    assert dict(pages.skipped) == {"matches ignore pattern '_DONE.json'": 1}
    assert [e.uri for e in list_source(storage, storage.root, ("_DONE.json",)).entries] == seen


def test_reading_page_by_page_holds_one_page_not_the_listing(archive, live_entries) -> None:
    """Entries alive while the pages are read: about a page, never the listing."""
    storage, _lists = archive
    most = 0
    for _page in SourcePages(storage, storage.root, page_size=PAGE):
        most = max(most, len(live_entries))
    assert 0 < most <= 2 * PAGE < OBJECTS
    held = list_source(storage, storage.root).entries
    assert len(live_entries) == len(held) == OBJECTS + 1


def test_one_shard_is_a_prefix_and_a_missing_one_is_refused(archive) -> None:
    storage, _lists = archive
    shard = [e.uri for page in SourcePages(storage, storage.uri("001"), page_size=PAGE) for e in page]
    assert shard == [f"s3://{BUCKET}/{archive_key(i, SHARD)}" for i in range(SHARD, 2 * SHARD)]
    with pytest.raises(MissingSourceError, match="no such prefix"):
        SourcePages(storage, storage.uri("999"))
