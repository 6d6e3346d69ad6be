"""Writing a files backup's members under a target folder, never outside it.

The archive comes from a repository, which whoever can write there (or holds the public
key) could have forged, so each member is treated as hostile until shown harmless, as GNU
tar, restic and borg do:
- a name that is absolute, holds "..", or is empty is refused;
- no member is written through a symlink: every folder on the way to it is looked at with
  lstat (once per folder) and one that is a symlink refuses the member; the member itself
  is created with O_EXCL | O_NOFOLLOW after what was there is removed;
- a symlink is restored as a link, whatever it points to, and never followed;
- a hard link must name a member inside the target whose folders are real folders, and be
  a regular file there;
- device files, FIFOs and other special members are refused.
A refused member is skipped and reported; the rest of the archive is restored, and the
restore fails at its end. Folders get their modes and times last (deepest first), so a
read-only folder can still be filled."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lifeboat.errors import UsageError
from lifeboat.pipeline.tar.parser import DIRECTORY, HARDLINK, SYMLINK, TarMember
from lifeboat.sources.files.index import IndexEntry
from lifeboat.sources.files.owners import gid_of, uid_of
from lifeboat.sources.files.readback import CheckedArchive, Problems, member_type
from lifeboat.util.osuser import is_root

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    """A member that would write outside the target, or that cannot be restored safely."""


def safe_name(name: str) -> PurePosixPath:
    """The member's path relative to the target, or Refused."""
    if not name or "\0" in name:
        raise Refused("an empty name")
    if name.startswith("/"):
        raise Refused("an absolute name")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Refused("a name with '..'")
    if not parts:
        raise Refused("names the target itself")
    return PurePosixPath(*parts)


def normalise_selection(paths: Sequence[str]) -> tuple[str, ...]:
    """--path values as member names: with or without the leading "/", without a trailing
    one; "..", an empty path are usage errors."""
    chosen = []
    for given in paths:
        try:
            chosen.append(str(safe_name(given.strip().lstrip("/"))))
        except Refused as exc:
            raise UsageError(f"--path {given!r}: {exc} (name a path of the backup)") from None
    return tuple(chosen)


def selected(name: str, selection: Sequence[str]) -> bool:
    if not selection:
        return True
    clean = name.rstrip("/")
    return any(clean == chosen or clean.startswith(chosen + "/") for chosen in selection)


@dataclass(frozen=True)
class _Folder:
    path: Path
    entry: IndexEntry
    member: TarMember


class Restorer(CheckedArchive):
    """A writable sink: the archive, checked against its index and written under root
    (only the selected members). `groups` are the backed-up paths: restored members are
    counted per group, for a drill's comparison."""

    def __init__(
        self,
        index: Iterator[IndexEntry],
        root: Path,
        selection: Sequence[str] = (),
        groups: Sequence[str] = (),
    ) -> None:
        super().__init__(self._counted(index))
        self.root = Path(os.path.realpath(root))
        self.selection = tuple(selection)
        self.groups = sorted(groups, key=len, reverse=True)
        self.per_group: dict[str, int] = dict.fromkeys(groups, 0)  # restored
        self.expected_per_group: dict[str, int] = dict.fromkeys(groups, 0)  # in the index
        self.refused = Problems()
        self.restored = 0
        self._as_root = is_root()
        self._checked: set[str] = set()  # folders under root seen to be real folders
        self._folders: list[_Folder] = []
        self._fd: int | None = None
        self._name = ""  # of the file being written

    # --- hooks of the check ----------------------------------------------------------------

    def accept(self, member: TarMember, entry: IndexEntry | None) -> None:
        if not selected(member.name, self.selection):
            return
        if member.kind == DIRECTORY and member.name.strip("/") in (".", ""):
            if entry is not None:  # the target itself (a backup of "/"): there already
                self._count(member.name)
            return
        try:
            relative = safe_name(member.name)
            if not (member.is_file or member.kind in (DIRECTORY, SYMLINK, HARDLINK)):
                raise Refused(f"a {member_type(member)} member (only files, folders and links)")
            if entry is None:
                return  # the check reported it: nothing the index does not vouch for
            self._create(member, entry, relative)
        except Refused as exc:
            self.refused.add(f"{member.name!r}: refused, {exc}")
        except OSError as exc:
            self.refused.add(f"{member.name!r}: cannot be written: {exc.strerror}")

    def content(self, piece: memoryview) -> None:
        if self._fd is None:
            return
        written = 0
        try:
            while written < len(piece):
                written += os.write(self._fd, piece[written:])
        except OSError as exc:  # a full disk: this file is reported, the next ones tried
            self.refused.add(f"{self._name!r}: cannot be written: {exc.strerror}")
            os.close(self._fd)
            self._fd = None

    def done(self, member: TarMember, entry: IndexEntry | None, intact: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if entry is not None:
                self._set_attributes(fd, member, entry)
                self._count(member.name)
        except OSError as exc:
            self.refused.add(f"{member.name!r}: attributes not set: {exc.strerror}")
        finally:
            os.close(fd)

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def finish(self) -> None:
        super().finish()
        # deepest first: a folder's time is set after what is written into it
        for folder in reversed(self._folders):
            try:
                if not stat.S_ISDIR(os.lstat(folder.path).st_mode):
                    continue
                self._own(folder.path, folder.member, folder_fd=None)
                os.chmod(folder.path, folder.entry.mode)
                os.utime(folder.path, ns=(folder.entry.mtime_ns, folder.entry.mtime_ns))
            except OSError as exc:
                self.refused.add(f"{folder.member.name!r}: attributes not set: {exc.strerror}")

    # --- writing ---------------------------------------------------------------------------

    def _create(self, member: TarMember, entry: IndexEntry, relative: PurePosixPath) -> None:
        path = self._folder_for(relative.parent) / relative.name
        if member.kind == DIRECTORY:
            self._make_folder(path, relative, member, entry)
        elif member.is_file:
            self._clear(path)
            self._fd = os.open(path, _CREATE, 0o600)
            self._name = member.name
        elif member.kind == SYMLINK:
            self._clear(path)
            os.symlink(member.linkname, path)
            self._own(path, member, folder_fd=None)
            os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
            self._count(member.name)
        else:
            self._link(path, member)

    def _folder_for(self, relative: PurePosixPath) -> Path:
        """root/relative, made of real folders (created as needed); Refused when a part of
        it is a symlink or not a folder."""
        path = self.root
        walked = PurePosixPath()
        for part in relative.parts:
            path, walked = path / part, walked / part
            key = str(walked)
            if key in self._checked:
                continue
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o777)  # the umask applies, as for tar; a member sets its own
            else:
                if stat.S_ISLNK(info.st_mode):
                    raise Refused(f"it would be written through the symlink {key!r}")
                if not stat.S_ISDIR(info.st_mode):
                    raise Refused(f"{key!r} is not a folder")
            self._checked.add(key)
        return path

    def _make_folder(
        self, path: Path, relative: PurePosixPath, member: TarMember, entry: IndexEntry
    ) -> None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o700)
        else:
            if not stat.S_ISDIR(info.st_mode):
                path.unlink()  # a symlink or file there: replaced, never followed
                os.mkdir(path, 0o700)
            else:
                os.chmod(path, 0o700 | stat.S_IMODE(info.st_mode))
        self._checked.add(str(relative))
        self._folders.append(_Folder(path, entry, member))
        self._count(member.name)

    def _clear(self, path: Path) -> None:
        """Room for a new member at path: a file or symlink there goes; a folder stays and
        refuses the member (tar would not replace a folder by a file either)."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            raise Refused("a folder is there")
        os.unlink(path)

    def _link(self, path: Path, member: TarMember) -> None:
        target = safe_name(member.linkname)
        if not selected(str(target), self.selection):
            raise Refused(f"a hard link to {member.linkname!r}, which --path leaves out")
        folder = self.root
        walked = PurePosixPath()
        for part in target.parent.parts:
            folder, walked = folder / part, walked / part
            if str(walked) not in self._checked:
                raise Refused(f"a hard link to {member.linkname!r}, not restored before it")
        source = folder / target.name
        try:
            info = os.lstat(source)
        except FileNotFoundError:
            raise Refused(f"a hard link to {member.linkname!r}, not restored before it") from None
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"a hard link to {member.linkname!r}, which is not a file")
        self._clear(path)
        os.link(source, path, follow_symlinks=False)
        self._count(member.name)

    def _set_attributes(self, fd: int, member: TarMember, entry: IndexEntry) -> None:
        self._own(None, member, folder_fd=fd)
        os.fchmod(fd, entry.mode)
        os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))

    def _own(self, path: Path | None, member: TarMember, folder_fd: int | None) -> None:
        """The member's owner, when running as root: by name when this system knows the
        name (as tar does), else by number."""
        if not self._as_root:
            return
        uid, gid = uid_of(member.uname, member.uid), gid_of(member.gname, member.gid)
        if folder_fd is not None:
            os.fchown(folder_fd, uid, gid)
        elif path is not None:
            os.chown(path, uid, gid, follow_symlinks=False)

    def _count(self, name: str) -> None:
        self.restored += 1
        group = self._group(name)
        if group is not None:
            self.per_group[group] += 1

    def _group(self, name: str) -> str | None:
        for group in self.groups:
            if name == group or name.startswith(group + "/") or group == ".":
                return group
        return None

    def _counted(self, index: Iterator[IndexEntry]) -> Iterator[IndexEntry]:
        for entry in index:
            if selected(entry.path, self.selection):
                group = self._group(entry.path)
                if group is not None:
                    self.expected_per_group[group] += 1
            yield entry


def is_empty_folder(path: Path) -> bool:
    try:
        with os.scandir(path) as listing:
            return next(listing, None) is None
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return True
        raise
