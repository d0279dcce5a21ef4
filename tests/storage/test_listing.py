"""list_source on a real folder: every entry accounted for, links that leave the root and special files refused
unopened, loops walked once; Storage's local reads refuse the same entries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_corpus import IGNORE, build_corpus

from causalprint.imaging import ImageErrorKind
from causalprint.storage import (
    MissingSourceError,
    NotARegularFileError,
    OutsideStorageError,
    Storage,
    StorageConfig,
    StorageError,
    list_source,
)
from causalprint.storage.listing import SKIP_LINKED_FOLDER, EntryProblem


def test_every_entry_is_listed_once_or_counted_as_skipped(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path)
    storage = Storage(StorageConfig(root=str(corpus.root)))
    listing = list_source(storage, "inbox", IGNORE)
    got = {e.uri: e.problem for e in listing.entries}
    assert len(got) == len(listing.entries)
    expected_problems = {"outside_root", "not_a_file", "read_failed"}
    assert got == {corpus.uri(name): (kind if kind in expected_problems else "") for name, kind in corpus.kinds.items()}
    assert listing.skipped == corpus.skipped
    assert [e.uri for e in listing.entries] == sorted(got)


def test_a_link_loop_is_walked_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "loop" / "deeper").mkdir(parents=True)
    for i in range(3):
        (root / "loop" / f"{i}.png").write_bytes(b"x")
        (root / "loop" / "deeper" / f"{i}.png").write_bytes(b"y")
    (root / "loop" / "up").symlink_to("..")
    (root / "loop" / "deeper" / "again").symlink_to(root / "loop")
    (root / "loop" / "self").symlink_to(".")
    listing = list_source(Storage(StorageConfig(root=str(root))), "loop")
    assert len(listing.entries) == 6 and all(not e.problem for e in listing.entries)
    # self and again are loop itself; up leads to the root (inside it, so walked), whose loop is walked already.
    assert listing.skipped == {SKIP_LINKED_FOLDER: 3}


def test_a_link_to_a_folder_inside_the_root_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "real" / "a.png").write_bytes(b"x")
    (root / "src" / "linked").symlink_to(root / "real")
    listing = list_source(Storage(StorageConfig(root=str(root))), "src")
    assert [e.uri for e in listing.entries] == [f"{root}/src/linked/a.png"]


def test_the_problem_kinds_are_row_kinds() -> None:
    assert {str(p) for p in EntryProblem} <= {str(k) for k in ImageErrorKind}


def test_a_missing_source_is_an_error(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    with pytest.raises(MissingSourceError, match="no such folder or file"):
        list_source(storage, "photoz")
    (tmp_path / "empty").mkdir()
    assert list_source(storage, "empty").entries == []


def test_a_source_that_links_out_of_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / "inbox").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutsideStorageError):
        list_source(Storage(StorageConfig(root=str(tmp_path / "root"))), "inbox")


def test_local_reads_refuse_links_out_of_the_root_and_special_files(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path)
    storage = Storage(StorageConfig(root=str(corpus.root)))
    for name in ("passwd.png", "outside-image.png", "zero.png"):
        with pytest.raises(OutsideStorageError):
            storage.read_bytes(corpus.uri(name))
        with pytest.raises(OutsideStorageError):
            storage.size(corpus.uri(name))
    with pytest.raises(NotARegularFileError):  # would block forever if it were opened
        storage.read_bytes(corpus.uri("pipe.png"))
    assert storage.read_bytes(corpus.uri("alias.png")) == storage.read_bytes(corpus.uri("a.png"))


def test_a_local_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match="is a file, not a folder"):
        Storage(StorageConfig(root=str(tmp_path / "file")))
    with pytest.raises(StorageError, match="is a file, not a folder"):
        Storage(StorageConfig(root="file:///etc/passwd"))


def test_a_name_that_is_not_utf8_is_an_error_row(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    try:
        with open(os.fsencode(root / "src") + b"/bad\xffname.png", "wb") as handle:
            handle.write(b"x")
    except OSError:
        pytest.skip("this filesystem refuses names that are not UTF-8")
    listing = list_source(Storage(StorageConfig(root=str(root))), "src")
    [entry] = listing.entries
    assert entry.problem == "read_failed" and "not valid UTF-8" in entry.reason
    assert entry.uri.endswith("bad\\xffname.png")
