"""Files sources end to end with the real command, age, zstd and tar: backup, list, show,
restore (whole and --path), manual extraction, verify --deep, drill, prune; a file changing
during a backup; a hostile archive in the repository. No PostgreSQL is needed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.errors import LifeboatError
from lifeboat.pipeline.crypto import write_identity
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.commit import build_manifest, commit, lock_all, new_backup_id
from lifeboat.repo.manifest import FilesDetails, StoredObject
from lifeboat.repo.objects import Targets, write_plain
from lifeboat.sources.files.index import (
    ARCHIVE_FORMAT,
    ARCHIVE_OBJECT,
    INDEX_FORMAT,
    INDEX_OBJECT,
)
from lifeboat.sources.files.kind import FilesKind
from lifeboat.storage.local import LocalStorage
from lifeboat.util.progress import Advance, Reporter
from tests.forged_archives import Member, file, forged, link
from tests.mounts import small_tmpfs

from .helpers import Workspace, error_line

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "manual-restore.md"

NOBODY = 65534
UNNAMED = 4242  # a uid and gid no user or group of this system has


@dataclass
class FilesWorkspace(Workspace):
    data: Path = Path()  # the backed-up folder

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(*args, check=True)

    def json(self, *args: str) -> object:
        return self.run_json(*args)

    def backup_dir(self, backup: str) -> Path:
        return self.repo / "media" / "backups" / backup


def files_workspace(root: Path, data: Path, extra: str = "") -> FilesWorkspace:
    ws = FilesWorkspace(root, write_identity(root / "age.key"), data=data)
    ws.config.write_text(
        f'[repositories.local]\nurl = "file://{ws.repo}"\n\n'
        f'[encryption]\nage_recipients = ["{ws.public_key}"]\n'
        f'age_identity_file = "{ws.identity}"\n\n'
        f"[compression]\nlevel = 3\n\n"
        f'[sources.media]\ntype = "files"\npaths = ["{data}"]\n'
        f'exclude = ["*.tmp", "cache/"]\n{extra}\n'
        f'[logging]\nformat = "plain"\n',
        encoding="utf-8",
    )
    ws.ok("init")
    return ws


def fill(data: Path) -> None:
    """A tree with what a files backup must keep."""
    (data / "uploads" / "2026" / "03").mkdir(parents=True)
    (data / "uploads" / "2026" / "04").mkdir(parents=True)
    (data / "uploads" / "2026" / "03" / "photo é.jpg").write_bytes(os.urandom(300_000))
    (data / "uploads" / "2026" / "04" / "notes.txt").write_bytes(b"april\n")
    (data / "uploads" / "empty").mkdir()
    (data / "uploads" / "zero").write_bytes(b"")
    (data / "etc").mkdir()
    (data / "etc" / "app.conf").write_text("key = 'value'\n")
    (data / "etc" / "app.conf").chmod(0o600)
    (data / "etc" / "current").symlink_to("app.conf")
    (data / "etc" / "dangling").symlink_to("/nonexistent/target")
    os.link(data / "etc" / "app.conf", data / "etc" / "app.conf.hardlink")
    long_folder = data / ("ß" * 70) / ("deep folder " * 10)
    long_folder.mkdir(parents=True)
    (long_folder / "na me\nwith 'quotes\"").write_bytes(b"odd name")
    with (data / "sparse.img").open("wb") as sparse:
        sparse.truncate(8 << 20)
        sparse.seek(4 << 20)
        sparse.write(b"data in the middle")
    (data / "scratch.tmp").write_bytes(b"excluded")
    (data / "uploads" / "cache").mkdir()
    (data / "uploads" / "cache" / "thumb").write_bytes(b"excluded")
    os.chown(data / "uploads" / "2026" / "04" / "notes.txt", NOBODY, NOBODY)
    os.chown(data / "etc" / "current", UNNAMED, UNNAMED, follow_symlinks=False)
    os.chown(data / "uploads" / "empty", UNNAMED, NOBODY)
    os.utime(data / "uploads" / "zero", ns=(0, 1_600_000_000_123_456_789))


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """What restoring must bring back of each entry under root: kind, content's sha256 or
    link target, mode, owner, mtime; and which entries share an inode."""
    found: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, str] = {}
    for folder, dirs, files in os.walk(root):
        for entry in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            key = os.path.relpath(entry, root)
            info = os.lstat(entry)
            if os.path.islink(entry):
                what: object = ("link", os.readlink(entry))
            elif os.path.isdir(entry):
                what = ("dir",)
            else:
                what = ("file", hashlib.sha256(Path(entry).read_bytes()).hexdigest())
                if info.st_nlink > 1:
                    what = (*what, "same as " + inodes.setdefault(info.st_ino, key))
            mtime = info.st_mtime_ns if key != "." else None  # the top is written into
            found[key] = (what, info.st_mode, info.st_uid, info.st_gid, mtime)
    return found


def excluded_removed(data: Path) -> dict[str, tuple[object, ...]]:
    expected = snapshot(data)
    for key in ("scratch.tmp", "uploads/cache", "uploads/cache/thumb"):
        del expected[key]
    return expected


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FilesWorkspace, str]]:
    root = tmp_path_factory.mktemp("files")
    data = root / "data"
    data.mkdir()
    fill(data)
    ws = files_workspace(root, data)
    backup = ws.json("backup", "media")
    assert isinstance(backup, dict)
    yield ws, str(backup["id"])


def relative(path: Path) -> str:
    return str(path).lstrip("/")


def test_a_backup_is_listed_shown_and_restored_whole_as_it_was(
    backed_up: tuple[FilesWorkspace, str], tmp_path: Path
) -> None:
    ws, backup = backed_up
    listed = ws.json("list", "media")
    assert isinstance(listed, list)
    assert [(b["id"], b["type"]) for b in listed] == [(backup, "files")]
    manifest = json.loads((ws.backup_dir(backup) / "manifest.json").read_text())
    details = manifest["details"]
    assert details["paths"] == [relative(ws.data)]
    assert (details["files"], details["directories"], details["symlinks"]) == (7, 9, 2)
    assert details["changed"] == [] and details["skipped"] == {}
    assert backup in ws.ok("show", backup).stdout

    target = tmp_path / "restored"
    restored = ws.json("restore", "media", "--to", str(target))
    assert isinstance(restored, dict)
    assert (restored["files"], restored["directories"], restored["symlinks"]) == (7, 9, 2)
    assert snapshot(target / relative(ws.data)) == excluded_removed(ws.data)
    assert (target / relative(ws.data) / "sparse.img").stat().st_size == 8 << 20

    # the same folder again: not without --yes, then replaced file by file
    refused = ws.run("restore", "media", "--to", str(target))
    assert refused.returncode == 2
    assert "is not empty: give --yes" in error_line(refused)
    (target / relative(ws.data) / "etc" / "app.conf").write_text("changed since")
    ws.ok("restore", "media", "--to", str(target), "--yes")
    assert snapshot(target / relative(ws.data)) == excluded_removed(ws.data)


def test_path_restores_only_that_part_named_with_or_without_the_slash(
    backed_up: tuple[FilesWorkspace, str], tmp_path: Path
) -> None:
    ws, _ = backed_up
    wanted = ws.data / "uploads" / "2026" / "03"
    for given, target in ((str(wanted), tmp_path / "a"), (relative(wanted) + "/", tmp_path / "b")):
        ws.ok("restore", "media", "--to", str(target), "--path", given)
        restored = [p.relative_to(target) for p in sorted(target.rglob("*"))]
        top = Path(relative(wanted))
        assert restored[-2:] == [top, top / "photo é.jpg"]
        assert all(top.is_relative_to(p) or p.is_relative_to(top) for p in restored)
        assert (target / top / "photo é.jpg").read_bytes() == (wanted / "photo é.jpg").read_bytes()
    missing = ws.run("restore", "media", "--to", str(tmp_path / "c"), "--path", "/srv/none")
    assert missing.returncode == 2
    assert "--path srv/none: not in backup" in error_line(missing)
    assert not (tmp_path / "c").exists()


def documented_files_restore(ws: FilesWorkspace, target: Path, index: Path) -> str:
    """The bash blocks of docs/manual-restore.md's files section, run as written, with this
    test's repository, key and folders."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Files sources") :]
    blocks = section.split("```bash\n")[1:3]
    script = "\n".join(block.split("```", 1)[0] for block in blocks)
    for written, here in [
        ("REPO=/var/backups/lifeboat", f"REPO={ws.repo}"),
        ("/etc/lifeboat/age.key", str(ws.identity)),
        ("/srv/restore", str(target)),
        ("/tmp/index.jsonl", str(index)),
    ]:
        assert written in script, written
        script = script.replace(written, here)
    return "set -euo pipefail\n" + script


def test_the_archive_extracts_by_hand_as_documented(
    backed_up: tuple[FilesWorkspace, str], tmp_path: Path
) -> None:
    ws, _ = backed_up
    target = tmp_path / "by-hand"
    script = documented_files_restore(ws, target, tmp_path / "index.jsonl")
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert snapshot(target / relative(ws.data)) == excluded_removed(ws.data)
    assert done.stdout.splitlines()[-1] == f"{7 + 9 + 2} entries, 0 files differ"


def test_verify_deep_and_a_drill_pass(backed_up: tuple[FilesWorkspace, str]) -> None:
    ws, backup = backed_up
    assert "1 backup(s) verified (deep)" in ws.ok("verify", "media", "--deep").stdout
    record = ws.json("drill", "media")
    assert isinstance(record, dict)
    (drill,) = record["drills"]
    assert drill["verdict"] == "pass" and drill["backup"] == backup
    assert drill["tables"] == [
        {"table": f"{relative(ws.data)} (members)", "expected": 18, "actual": 18}
    ]
    assert drill["rpo_method"] == "backup start"
    leftovers = list(Path(tempfile.gettempdir()).glob(f"lifeboat-drill-media-{backup}-*"))
    assert leftovers == []


def test_verify_deep_catches_a_corrupted_archive_and_prune_keeps_the_newest(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "file").write_bytes(os.urandom(200_000))
    ws = files_workspace(tmp_path, data, extra="[sources.media.retention]\nkeep_last = 1\n")
    older = ws.json("backup", "media")
    newer = ws.json("backup", "media")
    assert isinstance(older, dict) and isinstance(newer, dict)
    stored = next(ws.backup_dir(str(older["id"])).glob("files.tar.zst.*"))
    damaged = bytearray(stored.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    stored.write_bytes(bytes(damaged))
    failed = ws.run("verify", "media", "--deep")
    assert failed.returncode == 1
    assert str(older["id"]) in error_line(failed)
    drilled = ws.run("drill", "media", "--backup", str(older["id"]))
    assert drilled.returncode == 1
    assert "files.tar.zst.age: age decryption failed, the object is corrupted" in drilled.stdout
    ws.ok("prune", "media")
    listed = ws.json("list", "media")
    assert isinstance(listed, list)
    assert [b["id"] for b in listed] == [newer["id"]]
    assert "verified (deep)" in ws.ok("verify", "media", "--deep").stdout


def test_a_missing_path_fails_the_backup_in_one_line(tmp_path: Path) -> None:
    ws = files_workspace(tmp_path, tmp_path / "not-there")
    failed = ws.run("backup", "media")
    assert failed.returncode == 1
    assert f"{tmp_path / 'not-there'}: no such file or directory" in error_line(failed)
    assert not (ws.repo / "media").exists() or ws.json("list", "media") == []


class AppendsOnce(Reporter):
    """The backup's progress: once it is inside the big file, a writer process appends to
    it and the backup goes on only when the writer is done, so the file changed while it
    was open whatever the machine's speed. The archive is read ahead of the compressor by
    a bounded number of MiB (backup.READ_AHEAD chunks, and zstd's own buffers), far less
    than the file's size past the point where the writer runs."""

    def __init__(self, big: Path, after_bytes: int) -> None:
        self.big = big
        self.after_bytes = after_bytes
        self.appended = False

    @contextmanager
    def shown(self, description: str) -> Iterator[Advance]:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if not self.appended and done[0] > self.after_bytes:
                subprocess.run(["sh", "-c", f"printf appended >> '{self.big}'"], check=True)
                self.appended = True

        yield advance


def test_a_file_written_to_during_the_backup_is_reported_not_fatal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a-small").write_bytes(b"small")
    big = data / "growing.log"
    big.write_bytes(b"x" * (64 << 20))
    ws = files_workspace(tmp_path, data)
    reporter = AppendsOnce(big, after_bytes=2 << 20)  # the big file is 64 MiB of the stream
    result = FilesKind().backup(Context.load(ws.config, reporter), "media")
    assert reporter.appended
    details = result.manifest.details
    assert isinstance(details, FilesDetails)
    assert details.changed == [relative(big)]
    # kept as it was read: the size it had when opened, every file checked on restore
    target = tmp_path / "restored"
    ws.ok("restore", "media", "--to", str(target))
    assert (target / relative(big)).read_bytes() == b"x" * (64 << 20)
    assert big.stat().st_size == (64 << 20) + len("appended")


def test_a_hostile_archive_in_the_repository_is_refused_and_writes_nothing_outside(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ws = files_workspace(tmp_path, data)
    outside = tmp_path / "outside"
    outside.mkdir()
    members = [
        file("../outside/dotdot", b"x"),
        link("escape", str(outside)),
        file("escape/planted", b"x"),
        link("hard", "../outside/sentinel", tarfile.LNKTYPE),
        file("fine", b"restored"),
    ]
    plant_backup(ws, members)
    failed = ws.run("restore", "media", "--to", str(tmp_path / "target"))
    assert failed.returncode == 1
    line = error_line(failed)
    assert "4 problems, the rest is restored" in line and "'../outside/dotdot': refused" in line
    assert list(outside.iterdir()) == []
    assert (tmp_path / "target" / "fine").read_bytes() == b"restored"


def plant_backup(ws: FilesWorkspace, members: list[Member]) -> None:
    """A committed backup of media whose archive is members, with an index that agrees:
    what someone who can write to the repository and has the public key could store."""
    ctx = Context.load(ws.config)
    archive, index = forged(members)
    repo = Repository("local", LocalStorage(ws.repo))
    encryptor = ctx.encryptor()
    with lock_all([repo], "media", "planting") as prepared:
        targets = Targets(prepared.repos)
        backup, started = new_backup_id(prepared.repos, "media")

        def store(name: str, body: bytes, plain_format: str) -> StoredObject:
            key = layout.object_key("media", backup, name + encryptor.suffix)
            return targets.take(
                write_plain(
                    targets.live,
                    key,
                    io.BytesIO(body),
                    encryptor,
                    ctx.config.compression,
                    plain_format,
                )
            )

        stored_archive = store(ARCHIVE_OBJECT, archive, ARCHIVE_FORMAT)
        stored_index = store(INDEX_OBJECT, index.encode(), INDEX_FORMAT)
        manifest = build_manifest(
            source="media",
            backup_id=backup,
            started=started,
            details=FilesDetails(
                paths=["data"],
                files=3,
                directories=0,
                symlinks=1,
                total_bytes=10,
                index=stored_index.name,
            ),
            objects=[stored_archive, stored_index],
            compression_level=3,
            encryptor=encryptor,
            tools={},
        )
        commit(manifest, targets.outcome(stored_archive), [])


def producer_pids() -> list[int]:
    """This process's children that produce a files archive."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = next(line for line in status.splitlines() if line.startswith("PPid:"))
        if int(parent.split()[1]) == os.getpid() and b"lifeboat.sources.files.producer" in command:
            found.append(int(entry.name))
    return found


class KillsTheReader(Reporter):
    """Kills the process reading the files once the backup is well into them."""

    def __init__(self, after_bytes: int) -> None:
        self.after_bytes = after_bytes
        self.killed: list[int] = []

    @contextmanager
    def shown(self, description: str) -> Iterator[Advance]:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if not self.killed and done[0] > self.after_bytes:
                for pid in producer_pids():
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)

        yield advance


def test_a_killed_reader_fails_the_backup_and_commits_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "big").write_bytes(os.urandom(1 << 20) * 48)
    ws = files_workspace(tmp_path, data)
    reporter = KillsTheReader(after_bytes=2 << 20)
    with pytest.raises(LifeboatError) as failed:
        FilesKind().backup(Context.load(ws.config, reporter), "media")
    assert reporter.killed
    assert "reading the files failed" in str(failed.value)
    assert ws.json("list", "media") == []
    # the next backup clears what the failed one left and works
    ws.ok("backup", "media")
    listed = ws.json("list", "media")
    assert isinstance(listed, list) and len(listed) == 1


def test_wrong_restores_fail_in_one_line_and_write_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a").write_bytes(b"a")
    ws = files_workspace(tmp_path, data)
    nothing_yet = ws.run("restore", "media", "--to", str(tmp_path / "t1"))
    assert nothing_yet.returncode == 1
    assert "no backup of media" in error_line(nothing_yet)
    ws.ok("backup", "media")
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"")
    for args, code, message in [
        (["--to", str(a_file)], 2, "not a folder"),
        (["--to", str(tmp_path / "t2"), "--path", "../etc"], 2, "a name with '..'"),
        (["--to", str(tmp_path / "t3"), "--target-db", "x"], 2, "--target-db: for PostgreSQL"),
    ]:
        failed = ws.run("restore", "media", *args)
        assert failed.returncode == code, failed.stderr
        assert message in error_line(failed)
    assert a_file.read_bytes() == b""
    assert not any((tmp_path / t).exists() for t in ("t1", "t2", "t3"))


def test_checks_name_a_path_that_is_missing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ws = files_workspace(tmp_path, data)
    ctx = Context.load(ws.config)
    assert FilesKind().checks(ctx, "media") == []
    data.rmdir()
    assert FilesKind().checks(ctx, "media") == [f"{data}: no such file or directory"]


def test_a_restore_onto_a_full_disk_fails_in_one_line(
    backed_up: tuple[FilesWorkspace, str], tmp_path: Path
) -> None:
    ws, _ = backed_up
    with small_tmpfs(tmp_path / "small", "1m") as small:
        failed = ws.run("restore", "media", "--to", str(small))
        assert failed.returncode == 1
        line = error_line(failed)
        assert "cannot be written: No space left on device" in line
        assert "the rest is restored" in line
