"""The archive a files backup streams: what it keeps of each kind of entry, what it leaves
out, and files that change, vanish or cannot be read while it is written."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pwd
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.sources.files.archive import ArchiveStream, Tally
from lifeboat.sources.files.index import IndexEntry
from lifeboat.sources.files.select import Entry, Excludes, archive_name, walk

BIG = 3 * (1 << 20)  # more than one read of the archive: the file is open across reads


def archive_of(
    entries: Iterator[Entry], folder: Path, read_size: int = 1 << 16
) -> tuple[bytes, list[IndexEntry], Tally, ArchiveStream]:
    index_path = folder / "index.jsonl"
    with index_path.open("w", encoding="ascii") as index_out:
        stream = ArchiveStream(entries, index_out)
        data = b"".join(iter(lambda: stream.read(read_size), b""))
    lines = index_path.read_text(encoding="ascii").splitlines()[1:]
    return data, [IndexEntry.parse(line, "test") for line in lines], stream.tally, stream


def tree_archive(
    roots: list[Path], folder: Path, exclude: tuple[str, ...] = (), one_fs: bool = False
) -> tuple[dict[str, tarfile.TarInfo], dict[str, bytes], list[IndexEntry], Tally]:
    unreadable: list[tuple[str, str]] = []
    entries = walk([str(r) for r in roots], Excludes(exclude), one_fs, unreadable)
    data, index, tally, _ = archive_of(entries, folder)
    for name, why in unreadable:
        tally.skip(name, why)
    members: dict[str, tarfile.TarInfo] = {}
    contents: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as archive:
        for member in archive:
            members[member.name] = member
            if member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                contents[member.name] = extracted.read()
    assert len(data) % 10240 == 0
    return members, contents, index, tally


def name(path: Path) -> str:
    return archive_name(str(path))


def test_every_kind_of_entry_is_kept_as_it_is(tmp_path: Path) -> None:
    root = tmp_path / "data"
    deep = root / ("ü" * 60) / ("long name " * 12)  # a path well over 255 bytes
    deep.mkdir(parents=True)
    (deep / "inner").write_bytes(b"deep")
    odd = root / "na me\nwith 'quote\"  and é"
    odd.write_bytes(b"odd")
    (root / "empty").mkdir()
    (root / "zero").write_bytes(b"")
    (root / "target").write_bytes(b"linked")
    (root / "symlink").symlink_to("target")
    (root / "dangling").symlink_to("/nowhere/at/all")
    os.link(root / "target", root / "hardlink")
    with (root / "sparse").open("wb") as sparse:
        sparse.truncate(5 << 20)
        sparse.seek(2 << 20)
        sparse.write(b"middle")
    os.chmod(root / "target", 0o640)
    os.utime(root / "zero", ns=(1, 1_234_567_891_234_567_891))

    members, contents, index, tally = tree_archive([root], tmp_path)

    assert contents[name(deep / "inner")] == b"deep"
    assert len(name(deep / "inner").encode()) > 255
    assert contents[name(odd)] == b"odd"
    assert members[name(root / "empty")].isdir()
    assert contents[name(root / "zero")] == b""
    assert members[name(root / "zero")].pax_headers["mtime"] == "1234567891.234567891"
    assert members[name(root / "symlink")].issym()
    assert members[name(root / "symlink")].linkname == "target"
    assert members[name(root / "dangling")].linkname == "/nowhere/at/all"
    # of the two names of one file, the first met holds the content, the other links to it
    linked = [members[name(root / n)] for n in ("target", "hardlink")]
    first, second = sorted(linked, key=lambda m: m.islnk())
    assert first.isfile() and contents[first.name] == b"linked"
    assert second.islnk() and second.linkname == first.name
    sparse_content = contents[name(root / "sparse")]  # stored whole
    assert len(sparse_content) == 5 << 20 and sparse_content[2 << 20 :][:6] == b"middle"
    assert members[name(root / "target")].mode == 0o640
    assert members[name(root)].uname == pwd.getpwuid(root.stat().st_uid).pw_name

    # the index has the archive's members in the archive's order, with their content's sha256
    assert [e.path for e in index] == list(members)
    for entry in index:
        if entry.type == "file":
            assert entry.sha256 == hashlib.sha256(contents[entry.path]).hexdigest()
    by_path = {e.path: e for e in index}
    assert by_path[second.name].type == "hardlink"
    assert by_path[second.name].sha256 == by_path[first.name].sha256
    assert by_path[name(root / "zero")].mtime_ns == 1_234_567_891_234_567_891
    assert (tally.files, tally.symlinks, tally.directories) == (6, 2, 4)
    assert tally.total_bytes == len(b"deep" + b"odd" + b"linked") + (5 << 20)
    assert tally.changed == [] and tally.skipped == {}


def test_excludes_by_name_by_folder_and_from_the_top(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for relative in ("a.tmp", "sub/b.tmp", "sub/cache/c", "cache/d", "keep/cache", "sub/skip1"):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (root / "skip2").write_bytes(b"x")
    (root / "top.log").write_bytes(b"x")
    (root / "sub" / "top.log").write_bytes(b"x")

    members, _, _, _ = tree_archive(
        [root], tmp_path, exclude=("*.tmp", "cache/", "sub/skip*", "/top.log")
    )

    kept = {m.removeprefix(name(root)) for m in members}
    # a file called cache is no folder; skip2 is not under sub/; /top.log is the top's only
    assert kept == {"", "/sub", "/keep", "/keep/cache", "/skip2", "/sub/top.log"}


def test_a_backup_of_the_root_names_its_members_from_the_top() -> None:
    """Paths below "/" are relative to it like any other: "/e[!t]*" is not "/etc"."""
    unreadable: list[tuple[str, str]] = []
    names = [entry.name for entry in walk(["/"], Excludes(["/[!e]*", "/e[!t]*"]), True, unreadable)]
    assert names[:2] == [".", "etc"]
    assert all(n == "." or n == "etc" or n.startswith("etc/") for n in names)


def test_special_files_are_left_out_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(root / "socket"))
        members, _, _, tally = tree_archive([root], tmp_path)
    assert set(members) == {name(root)}
    assert tally.skipped == {
        name(root / "fifo"): "a FIFO, not backed up",
        name(root / "socket"): "a socket, not backed up",
    }


def test_one_file_system_keeps_a_mount_point_empty(tmp_path: Path) -> None:
    """/dev/shm is a tmpfs mounted on /dev: with one_file_system its folder is kept, what
    is in it is not; /dev's devices are left out and reported either way."""
    if os.stat("/dev").st_dev == os.stat("/dev/shm").st_dev:
        pytest.fail("this test needs /dev/shm mounted on its own file system")
    with tempfile.NamedTemporaryFile(dir="/dev/shm", prefix="lifeboat-test-") as marker:
        staying, _, _, tally = tree_archive([Path("/dev")], tmp_path, one_fs=True)
        crossing, _, _, _ = tree_archive([Path("/dev")], tmp_path, one_fs=False)
    assert "dev/shm" in staying and name(Path(marker.name)) not in staying
    assert name(Path(marker.name)) in crossing
    assert tally.skipped["dev/null"] == "a character device, not backed up"


def test_a_file_appended_to_while_it_is_read_is_kept_as_read_and_reported(
    tmp_path: Path,
) -> None:
    """A writer process appends to the big file once the archive has been read past the
    file's first MiB: the file is open then, its size taken, its end not yet read."""
    root = tmp_path / "data"
    root.mkdir()
    big = root / "growing.log"
    big.write_bytes(b"a" * BIG)
    (root / "after").write_bytes(b"next member")

    def appended_mid_read(stream: ArchiveStream) -> bytes:
        chunks, total, appended = [], 0, False
        while chunk := stream.read(1 << 16):
            chunks.append(chunk)
            total += len(chunk)
            if not appended and total > (1 << 20) + 4096:
                subprocess.run(["sh", "-c", f"printf more >> '{big}'"], check=True)
                appended = True
        assert appended
        return b"".join(chunks)

    index_path = tmp_path / "index.jsonl"
    with index_path.open("w", encoding="ascii") as index_out:
        stream = ArchiveStream(walk([str(root)], Excludes(()), False, []), index_out)
        data = appended_mid_read(stream)

    assert stream.tally.changed == [name(big)]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        member = archive.getmember(name(big))
        assert member.size == BIG  # the size it had when it was opened
        extracted = archive.extractfile(member)
        assert extracted is not None and extracted.read() == b"a" * BIG
        after = archive.extractfile(name(root / "after"))
        assert after is not None and after.read() == b"next member"
    assert big.stat().st_size == BIG + 4


def test_a_file_that_shrinks_while_it_is_read_is_padded_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    big = root / "shrinking"
    big.write_bytes(b"b" * BIG)
    index_path = tmp_path / "index.jsonl"
    with index_path.open("w", encoding="ascii") as index_out:
        stream = ArchiveStream(walk([str(root)], Excludes(()), False, []), index_out)
        chunks = [stream.read(1 << 20), stream.read(1 << 20)]  # into the file's data
        subprocess.run(["truncate", "-s", str(1 << 20), str(big)], check=True)
        chunks += iter(lambda: stream.read(1 << 20), b"")
    data = b"".join(chunks)
    (entry,) = [IndexEntry.parse(line, "t") for line in index_path.read_text().splitlines()[2:]]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        extracted = archive.extractfile(name(big))
        assert extracted is not None
        content = extracted.read()
    assert len(content) == BIG and content.startswith(b"b" * (1 << 20))
    assert content.endswith(b"\0" * 4096)
    assert entry.sha256 == hashlib.sha256(content).hexdigest()  # what is stored
    assert stream.tally.changed == [name(big)]


def test_a_file_that_vanishes_after_the_listing_is_left_out_and_reported(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    doomed, kept = root / "doomed", root / "kept"
    doomed.write_bytes(b"x")
    kept.write_bytes(b"y")

    def listing_then_removal() -> Iterator[Entry]:
        for entry in walk([str(root)], Excludes(()), False, []):
            if entry.path == str(doomed):
                doomed.unlink()  # listed with its lstat, gone before it is opened
            yield entry

    data, index, tally, _ = archive_of(listing_then_removal(), tmp_path)
    assert [e.path for e in index] == [name(root), name(kept)]
    assert tally.changed == [name(doomed)]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        assert archive.getnames() == [name(root), name(kept)]


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Root reads every file: the walk runs as nobody for permissions to matter."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_files_and_folders_that_cannot_be_read_are_reported(tmp_path: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="lifeboat-unreadable-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        (shared / "secret").write_bytes(b"s")
        (shared / "secret").chmod(0o000)
        (shared / "closed").mkdir(mode=0o000)
        (shared / "open").write_bytes(b"o")
        (shared / "open").chmod(0o644)
        index_path = tmp_path / "index.jsonl"
        unreadable: list[tuple[str, str]] = []
        with index_path.open("w", encoding="ascii") as index_out, as_nobody():
            stream = ArchiveStream(walk([str(shared)], Excludes(()), False, unreadable), index_out)
            data = b"".join(iter(lambda: stream.read(1 << 16), b""))
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            names = set(archive.getnames())
        # the folder is there (empty), the unreadable file is not
        assert names == {name(shared), name(shared / "open"), name(shared / "closed")}
        assert stream.tally.skipped == {
            name(shared / "secret"): "cannot be read: Permission denied"
        }
        assert unreadable == [(name(shared / "closed"), "Permission denied")]
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=True)
