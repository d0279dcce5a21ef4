"""Every entry under a source, accounted for: the files to read, the entries that become error rows without being
opened, and what was skipped on purpose (with why).

A local folder is walked without trusting its links: a symbolic link is followed only when its target resolves
inside the storage root (else it is an ``outside_root`` row), and each folder is walked once, by device and inode,
so a link loop ends where it began. FIFOs, sockets and devices are ``not_a_file`` rows; a name that is not UTF-8
or a folder that cannot be listed is a ``read_failed`` row. Links to folders are walked after every real folder,
so a file reached both ways keeps its real path.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

from causalprint.storage.uri import OutsideStorageError, StorageError, is_temp_name

if TYPE_CHECKING:
    from causalprint.storage.store import Storage

SKIP_TEMPORARY = "temporary file of a write in progress"
SKIP_LINKED_FOLDER = "link to a folder already listed (a loop, or a second link to it)"


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
    """Every entry under ``source`` (a folder, a prefix or one file, inside the storage root).

    Raises :class:`MissingSourceError` when ``source`` does not exist, and :class:`OutsideStorageError` when it
    lies, or a link makes it resolve, outside the root. Nothing is opened.
    """
    uri = storage.resolve(source)
    if storage.is_s3:
        return _list_s3(storage, uri, ignore)
    return _list_local(storage, uri, ignore)


def _list_s3(storage: Storage, uri: str, ignore: Sequence[str]) -> Listing:
    fs, path = storage.filesystem, storage.fs_path(uri)
    top = fs.get_file_info(path)
    if top.type == pafs.FileType.File:
        return Listing(uri, [Entry(uri, int(top.size))])
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    files = [i for i in infos if i.type == pafs.FileType.File]
    if not files and top.type == pafs.FileType.NotFound:
        raise MissingSourceError(f"no such prefix: {uri}")
    entries: list[Entry] = []
    skipped: Counter[str] = Counter()
    for info in files:
        relative = info.path[len(path) :].lstrip("/")
        if is_temp_name(info.path):
            skipped[SKIP_TEMPORARY] += 1
        elif pattern := _ignored(relative, ignore):
            skipped[ignore_reason(pattern)] += 1
        else:
            entries.append(Entry(storage.uri_from_fs_path(info.path), int(info.size)))
    return Listing(uri, sorted(entries, key=lambda e: e.uri), dict(skipped))


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
