"""A stored object's plaintext fetched into a file for a tool that seeks: the room checked
first, the file private and gone afterwards, a killed run's leftovers removed."""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import pytest

from lifeboat.config.model import CompressionConfig
from lifeboat.errors import InsufficientSpaceError, IntegrityError, LifeboatError
from lifeboat.pipeline.crypto import AgeDecryptor, AgeEncryptor, write_identity
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.fetch import FOLDER_PREFIX, fetched, remove_leftovers, require_free_space
from lifeboat.repo.manifest import Manifest
from lifeboat.repo.objects import write_plain
from lifeboat.storage.memory import MemoryStorage
from lifeboat.util.fs import free_space
from tests.unit.backups import physical_manifest

PLAIN = bytes(range(256)) * 4096  # 1 MiB
TIB = 1 << 40


# --- require_free_space ---------------------------------------------------------------------


def test_enough_room_passes(tmp_path: Path) -> None:
    require_free_space(tmp_path, 1, "a small file")
    require_free_space(tmp_path, 0, "nothing at all")


def test_too_little_room_is_one_line_naming_the_folder_what_and_both_sizes(tmp_path: Path) -> None:
    # more than any test machine's disk holds, so the free space cannot catch up meanwhile
    needed = free_space(tmp_path) + 100 * TIB
    with pytest.raises(InsufficientSpaceError) as caught:
        require_free_space(tmp_path, needed, "the decrypted dump of wms/20260303T020000Z")
    message = caught.value.message
    assert message.startswith(
        f"not enough free space in {tmp_path} for the decrypted dump of wms/20260303T020000Z: "
    )
    assert "TiB needed, " in message and message.endswith(" free")
    assert "\n" not in message
    assert caught.value.exit_code == 1


def test_a_missing_folder_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(LifeboatError, match=f"cannot use {missing} for a dump: No such file"):
        require_free_space(missing, 1, "a dump")


# --- fetched ------------------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Repository, Manifest, AgeDecryptor]:
    repo = Repository("main", MemoryStorage("fetch"))
    repo.init()
    key_file = tmp_path / "age.key"
    recipient = write_identity(key_file)
    manifest = physical_manifest(1)
    written = write_plain(
        repo,
        layout.object_key("wms", manifest.id, "dump.zst.age"),
        io.BytesIO(PLAIN),
        AgeEncryptor([recipient]),
        CompressionConfig(level=1, threads=1),
        "pg_dump-custom",
    )
    manifest = manifest.model_copy(update={"objects": [written.stored]})
    return repo, manifest, AgeDecryptor(key_file)


def work_folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_the_plaintext_is_a_private_file_while_the_block_runs_and_gone_after(
    tmp_path: Path, stored: tuple[Repository, Manifest, AgeDecryptor]
) -> None:
    repo, manifest, decryptor = stored
    work = work_folder(tmp_path)
    with fetched(repo, manifest, manifest.objects[0], decryptor, work) as path:
        assert path.read_bytes() == PLAIN
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent.parent == work
    assert list(work.iterdir()) == []


def test_a_failing_block_still_removes_the_file(
    tmp_path: Path, stored: tuple[Repository, Manifest, AgeDecryptor]
) -> None:
    repo, manifest, decryptor = stored
    work = work_folder(tmp_path)
    with (
        pytest.raises(RuntimeError, match="pg_restore stopped"),
        fetched(repo, manifest, manifest.objects[0], decryptor, work),
    ):
        raise RuntimeError("pg_restore stopped")
    assert list(work.iterdir()) == []


def test_a_damaged_object_leaves_no_file_behind(
    tmp_path: Path, stored: tuple[Repository, Manifest, AgeDecryptor]
) -> None:
    repo, manifest, decryptor = stored
    key = layout.object_key("wms", manifest.id, "dump.zst.age")
    with repo.storage.read(key) as stream:
        damaged = bytearray(stream.read())
    damaged[len(damaged) // 2] ^= 0xFF
    repo.storage.write(key, [bytes(damaged)])
    work = work_folder(tmp_path)
    with (
        pytest.raises(IntegrityError, match=re.escape("dump.zst.age")),
        fetched(repo, manifest, manifest.objects[0], decryptor, work),
    ):
        pytest.fail("a damaged object must not be handed out")
    assert list(work.iterdir()) == []


def test_an_object_larger_than_the_room_left_is_refused_before_writing(
    tmp_path: Path, stored: tuple[Repository, Manifest, AgeDecryptor]
) -> None:
    repo, manifest, decryptor = stored
    huge = manifest.objects[0].model_copy(update={"plain_size": free_space(tmp_path) + 100 * TIB})
    work = work_folder(tmp_path)
    with (
        pytest.raises(InsufficientSpaceError, match=f"for the decrypted dump of wms/{manifest.id}"),
        fetched(repo, manifest, huge, decryptor, work),
    ):
        pytest.fail("refused before the block")
    assert list(work.iterdir()) == []


def test_a_killed_runs_folder_is_removed_a_live_ones_kept(tmp_path: Path) -> None:
    work = work_folder(tmp_path)
    # pids are below pid_max: no process can have that one
    gone = int(Path("/proc/sys/kernel/pid_max").read_text())
    dead = work / f"{FOLDER_PREFIX}{gone}-abc123"
    live = work / f"{FOLDER_PREFIX}{os.getpid()}-def456"
    other = work / "lifeboat-fetch-notes"
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "dump").write_bytes(b"plaintext")
    assert remove_leftovers(work) == [dead]
    assert sorted(p.name for p in work.iterdir()) == sorted([live.name, other.name])
