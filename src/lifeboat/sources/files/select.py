"""Which files a backup reads: the configured paths walked lazily, minus the excludes.

The walk holds one os.scandir iterator per folder level it is in, never a listing of the
tree, so millions of files cost no more memory than a few. Each entry comes with its lstat
(symlinks are entries, never followed) and the name the archive gives it: its absolute path
without the leading "/"."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Pattern:
    """One `exclude` entry (docs/configuration.md): `*.tmp` matches a name anywhere,
    `cache/` a directory anywhere, a pattern with a "/" inside or at its start matches the
    path from the top of a configured path (`/tmp` is only the top's tmp)."""

    glob: str
    directories_only: bool
    anchored: bool

    @classmethod
    def parse(cls, text: str) -> Pattern:
        directories_only = text.endswith("/")
        anchored = "/" in text.rstrip("/")
        return cls(text.strip("/"), directories_only, anchored)

    def matches(self, relative: str, name: str, is_dir: bool) -> bool:
        if self.directories_only and not is_dir:
            return False
        return fnmatch.fnmatchcase(relative if self.anchored else name, self.glob)


class Excludes:
    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = [Pattern.parse(p) for p in patterns if p.strip("/")]

    def excluded(self, relative: str, name: str, is_dir: bool) -> bool:
        """relative: the entry's path below its configured path ("a/b.tmp")."""
        return any(p.matches(relative, name, is_dir) for p in self.patterns)


class Entry(NamedTuple):
    """A thing found by the walk: where it is, what the archive calls it, its lstat.
    (A tuple: one is made for every file of a backup.)"""

    path: str  # on disk, absolute
    name: str  # in the archive
    info: os.stat_result | None  # None: a regular file, as the folder's listing says


def archive_name(path: str) -> str:
    """The member name of an absolute path: the path without its leading "/"."""
    return path.lstrip("/") or "."


def walk(
    roots: Sequence[str],
    excludes: Excludes,
    one_file_system: bool,
    unreadable: list[tuple[str, str]],
) -> Iterator[Entry]:
    """Every entry under each root, parents before children (a folder before what it
    holds). A folder that cannot be listed is yielded, then reported in unreadable
    (name, why), as is a root gone since the backup began."""
    for root in roots:
        root = os.path.normpath(root)
        try:
            info = os.lstat(root)
        except OSError as exc:
            unreadable.append((archive_name(root), exc.strerror or str(exc)))
            continue
        yield Entry(root, archive_name(root), info)
        if not stat.S_ISDIR(info.st_mode):
            continue
        yield from _below(root, info.st_dev, excludes, one_file_system, unreadable)


def _below(
    root: str,
    device: int,
    excludes: Excludes,
    one_file_system: bool,
    unreadable: list[tuple[str, str]],
) -> Iterator[Entry]:
    # a stack of open folder listings, depth-first: folders are entered as they are met
    stack: list[tuple[str, Iterator[os.DirEntry[str]]]] = []

    def enter(folder: str) -> None:
        try:
            stack.append((folder, os.scandir(folder)))
        except OSError as exc:
            unreadable.append((archive_name(folder), exc.strerror or str(exc)))

    prefix = root if root.endswith("/") else root + "/"  # "/" itself ends with one
    enter(root)
    try:
        while stack:
            folder, listing = stack[-1]
            try:
                item = next(listing, None)
            except OSError as exc:
                unreadable.append((archive_name(folder), exc.strerror or str(exc)))
                item = None
            if item is None:
                stack.pop()
                _close(listing)
                continue
            is_dir = item.is_dir(follow_symlinks=False)  # from the listing: no stat(2)
            if excludes.patterns and excludes.excluded(item.path[len(prefix) :], item.name, is_dir):
                continue
            if item.is_file(follow_symlinks=False):
                # the archive stats a file once it is open, and trusts only that
                yield Entry(item.path, archive_name(item.path), None)
                continue
            try:
                info = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone between the listing and now: it was never in the backup
            is_dir = stat.S_ISDIR(info.st_mode)
            yield Entry(item.path, archive_name(item.path), info)
            # a mount point is kept as an empty folder, what is mounted on it left out
            if is_dir and not (one_file_system and info.st_dev != device):
                enter(item.path)
    finally:
        for _, listing in stack:
            _close(listing)


def _close(listing: Iterator[os.DirEntry[str]]) -> None:
    close = getattr(listing, "close", None)
    if close is not None:
        close()
