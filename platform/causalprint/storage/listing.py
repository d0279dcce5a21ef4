"""Every entry under a source, accounted for: the files to read, the entries that become error rows without being
opened, and what was skipped on purpose (with why).

A local folder is walked without trusting its links: a symbolic link is followed only when its target resolves
inside the storage root (else it is an ``outside_root`` row), and each folder is walked once, by device and inode,
so a link loop ends where it began. FIFOs, sockets and devices are ``not_a_file`` rows; a name that is not UTF-8
or a folder that cannot be listed is a ``read_failed`` row. Links to folders are walked after every real folder,
so a file reached both ways keeps its real path.

An S3 source is listed a page at a time (:class:`SourcePages`, one ``list_objects_v2`` request per page, at most
``page_size`` keys): a caller that works page by page, as the scan does, never holds the whole listing, which for
an archive of millions of objects would not fit in the driver. :func:`list_source` collects every page for the
callers that want one list. A local folder is walked whole, then paged.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

from causalprint.storage.uri import OutsideStorageError, StorageError, is_temp_name

if TYPE_CHECKING:
    from causalprint.storage.store import Storage

SKIP_TEMPORARY = "temporary file of a write in progress"
SKIP_LINKED_FOLDER = "link to a folder already listed (a loop, or a second link to it)"
LIST_PAGE_SIZE = 1000  # S3 answers at most 1,000 keys per list request


class EntryProblem(StrEnum):
    """Why a listed entry is an error row without being opened (values are :class:`ImageErrorKind` values)."""

    OUTSIDE_ROOT = "outside_root"
    NOT_A_FILE = "not_a_file"
    READ_FAILED = "read_failed"


class MissingSourceError(StorageError):
    """A source folder or prefix that does not exist."""


@dataclass(frozen=True)
class Entry:
    """One listed entry: a regular file to read (``problem == ""``), or an error row with its reason."""

    uri: str
    size: int = -1
    problem: str = ""
    reason: str = ""


@dataclass
class Listing:
    """The entries under ``source`` (sorted by URI) and the count of entries skipped on purpose, per reason."""

    source: str
    entries: list[Entry]
    skipped: dict[str, int] = field(default_factory=dict)


def ignore_reason(pattern: str) -> str:
    return f"matches ignore pattern {pattern!r}"


def _ignored(relative: str, patterns: Sequence[str]) -> str | None:
    """The first pattern matching the entry's name or its path below the source (``fnmatch``, case-sensitive)."""
    name = relative.rsplit("/", 1)[-1]
    for pattern in patterns:
        if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(relative, pattern):
            return pattern
    return None


def list_source(storage: Storage, source: str, ignore: Sequence[str] = ()) -> Listing:
    """Every entry under ``source`` (a folder, a prefix or one file, inside the storage root), as one list.

    Raises :class:`MissingSourceError` when ``source`` does not exist, and :class:`OutsideStorageError` when it
    lies, or a link makes it resolve, outside the root. Nothing is opened. For a source too large to hold, iterate
    :class:`SourcePages` instead.
    """
    pages = SourcePages(storage, source, ignore)
    entries = [entry for page in pages for entry in page]
    return Listing(pages.source, sorted(entries, key=lambda e: e.uri), dict(pages.skipped))


class SourcePages:
    """The entries under ``source`` a page at a time, in URI order; ``skipped`` counts what was skipped on purpose
    (per reason) among the pages iterated so far, ``listed`` the entries yielded so far.

    Built eagerly up to the first page, so that a missing source (:class:`MissingSourceError`), one outside the
    root or one that cannot be listed (credentials, the endpoint) raises here, before anything else is done. On S3
    each further page is one list request made when the caller asks for it: at most one page is held here.
    Iterate it once.
    """

    def __init__(
        self, storage: Storage, source: str, ignore: Sequence[str] = (), page_size: int = LIST_PAGE_SIZE
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.source = storage.resolve(source)
        self.skipped: Counter[str] = Counter()
        self.listed = 0
        if storage.is_s3:
            pages = _s3_pages(storage, self.source, tuple(ignore), page_size, self.skipped)
        else:
            listing = _list_local(storage, self.source, ignore)
            self.skipped.update(listing.skipped)
            pages = (listing.entries[i : i + page_size] for i in range(0, max(len(listing.entries), 1), page_size))
        self._first: list[Entry] | None = next(pages, [])
        self._rest = pages

    def __iter__(self) -> Iterator[list[Entry]]:
        if self._first is None:
            raise StorageError(f"the listing of {self.source} was already iterated; list it again")
        first, self._first = self._first, None
        for page in _chain(first, self._rest):
            self.listed += len(page)
            yield page


def _chain(first: list[Entry], rest: Iterator[list[Entry]]) -> Iterator[list[Entry]]:
    yield first
    yield from rest


def _s3_pages(
    storage: Storage, uri: str, ignore: tuple[str, ...], page_size: int, skipped: Counter[str]
) -> Iterator[list[Entry]]:
    """One list of entries per ``list_objects_v2`` page under ``uri`` (always at least one, maybe empty)."""
    path = storage.fs_path(uri)
    top = storage.filesystem.get_file_info(path)
    if top.type == pafs.FileType.File:
        yield [Entry(uri, int(top.size))]
        return
    bucket, _, key = path.partition("/")
    key_prefix = f"{key.rstrip('/')}/" if key else ""
    paginator = storage.boto3_client().get_paginator("list_objects_v2")
    first = True
    for page in paginator.paginate(Bucket=bucket, Prefix=key_prefix, PaginationConfig={"PageSize": page_size}):
        contents = page.get("Contents") or []
        if first and not contents and top.type == pafs.FileType.NotFound:
            raise MissingSourceError(f"no such prefix: {uri}")
        first = False
        entries: list[Entry] = []
        for item in contents:
            name = item["Key"]
            if name.endswith("/"):  # a folder marker, not a file
                continue
            relative = name[len(key_prefix) :]
            if is_temp_name(name):
                skipped[SKIP_TEMPORARY] += 1
            elif pattern := _ignored(relative, ignore):
                skipped[ignore_reason(pattern)] += 1
            else:
                entries.append(Entry(storage.uri_from_fs_path(f"{bucket}/{name}"), int(item["Size"])))
        yield entries
    if first:  # no page at all (a client that yields none for an empty prefix)
        if top.type == pafs.FileType.NotFound:
            raise MissingSourceError(f"no such prefix: {uri}")
        yield []


def inside(path: str, root: str) -> bool:
    """Whether the resolved ``path`` is ``root`` or lies below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_kind(mode: int) -> str:
    """What a non-regular, non-folder entry is, in words."""
    return next((what for test, what in _SPECIAL if test(mode)), "not a regular file")


class _LocalWalk:
    """The state of one walk of a local folder (see the module docstring)."""

    def __init__(self, root: str, start: str, ignore: Sequence[str]) -> None:
        self.root, self.start, self.ignore = root, start, ignore
        self.entries: list[Entry] = []
        self.skipped: Counter[str] = Counter()
        self.visited: set[tuple[int, int]] = set()
        self.folders: deque[str] = deque([start])
        self.linked: deque[str] = deque()

    def run(self) -> None:
        while self.folders or self.linked:
            folder = self.folders.popleft() if self.folders else self.linked.popleft()
            try:
                info = os.stat(folder)
                if (info.st_dev, info.st_ino) in self.visited:
                    self.skipped[SKIP_LINKED_FOLDER] += 1
                    continue
                self.visited.add((info.st_dev, info.st_ino))
                with os.scandir(folder) as scan:
                    children = sorted(scan, key=lambda c: c.name)
            except OSError as exc:
                self.error(folder, EntryProblem.READ_FAILED, f"cannot list this folder ({_os_reason(exc)})")
                continue
            for child in children:
                self.visit(child)

    def error(self, path: str, problem: EntryProblem, reason: str) -> None:
        self.entries.append(Entry(path, -1, str(problem), reason))

    def visit(self, child: os.DirEntry) -> None:
        path = child.path
        try:
            child.name.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            self.error(shown, EntryProblem.READ_FAILED, "its name is not valid UTF-8 (rename the file to read it)")
            return
        try:
            if child.is_symlink():
                self.visit_link(path)
            elif child.is_dir(follow_symlinks=False):
                self.folders.append(path)
            else:
                self.visit_file(path, child.stat(follow_symlinks=False))
        except OSError as exc:
            self.error(path, EntryProblem.READ_FAILED, _os_reason(exc))

    def visit_link(self, path: str) -> None:
        if pattern := _ignored(self.relative(path), self.ignore):
            self.skipped[ignore_reason(pattern)] += 1
            return
        if not inside(os.path.realpath(path), self.root):
            self.error(
                path, EntryProblem.OUTSIDE_ROOT, "a symbolic link whose target is outside the storage root (never read)"
            )
            return
        try:
            info = os.stat(path)
        except FileNotFoundError:
            self.error(path, EntryProblem.READ_FAILED, "a symbolic link to a missing target")
            return
        if stat.S_ISDIR(info.st_mode):
            self.linked.append(path)
        else:
            self.visit_file(path, info, checked=True)

    def visit_file(self, path: str, info: os.stat_result, checked: bool = False) -> None:
        if not checked and (pattern := _ignored(self.relative(path), self.ignore)):
            self.skipped[ignore_reason(pattern)] += 1
        elif not stat.S_ISREG(info.st_mode):
            self.error(path, EntryProblem.NOT_A_FILE, f"{special_kind(info.st_mode)}: special files are never opened")
        elif is_temp_name(path):
            self.skipped[SKIP_TEMPORARY] += 1
        else:
            self.entries.append(Entry(path, int(info.st_size)))

    def relative(self, path: str) -> str:
        return path[len(self.start) :].lstrip("/")


def _os_reason(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def _list_local(storage: Storage, uri: str, ignore: Sequence[str]) -> Listing:
    path = storage.fs_path(uri)
    root = os.path.realpath(storage.root)
    if not os.path.lexists(path):
        raise MissingSourceError(
            f"no such folder or file: {path} (a source is read inside storage.root {storage.root})"
        )
    if not inside(os.path.realpath(path), root):
        raise OutsideStorageError(f"{path} is a link to a place outside the storage root {storage.root}")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise MissingSourceError(f"cannot read {path}: {_os_reason(exc)}") from None
    if not stat.S_ISDIR(info.st_mode):
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"{path} is {special_kind(info.st_mode)}, not a folder or an image file")
        return Listing(uri, [Entry(path, int(info.st_size))])
    walk = _LocalWalk(root, path, tuple(ignore))
    walk.run()
    return Listing(uri, sorted(walk.entries, key=lambda e: e.uri), dict(walk.skipped))
