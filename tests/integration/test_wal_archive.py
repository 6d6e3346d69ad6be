"""WAL archiving through PostgreSQL's own archive_command calling `lifeboat wal-push`."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.pipeline.crypto import write_identity
from lifeboat.postgres.instance import ScratchCluster

from .archiving import switch_wal_and_wait
from .helpers import LIFEBOAT
from .versions import on_oldest_major


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture
def archive_dir() -> Iterator[Path]:
    """A folder the server's user owns: archive_command writes the repository as that user."""
    folder = Path(tempfile.mkdtemp(prefix="lifeboat-archive-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        reachable = subprocess.run([*_as_postgres(), "test", "-x", LIFEBOAT]).returncode == 0
        if not reachable:
            shutil.rmtree(folder)
            pytest.skip(f"the postgres user cannot run {LIFEBOAT} (checkout not reachable)")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# every archiving test on every major pushes through archive_command, and recovery
# from what it pushed runs on each in test_pitr: the checks here are wal-push's own
@on_oldest_major
def test_archive_command_pushes_every_switched_segment(
    pg_bin_dir: Path, archive_dir: Path, tmp_path: Path
) -> None:
    public = write_identity(tmp_path / "age.key")  # the secret stays with root
    config = archive_dir / "lifeboat.toml"
    config.write_text(
        f'[repositories.local]\nurl = "{archive_dir / "repo"}"\n'
        f'[encryption]\nage_recipients = ["{public}"]\n'
        f'age_identity_file = "{tmp_path / "age.key"}"\n'
        '[sources.wms]\ndsn = "postgresql://postgres@127.0.0.1/postgres"\n'
    )
    config.chmod(0o644)
    subprocess.run(
        [*_as_postgres(), LIFEBOAT, "--config", str(config), "init"],
        check=True,
        capture_output=True,
    )
    command = f"{LIFEBOAT} --config {config} wal-push wms %p"
    with ScratchCluster(
        pg_bin_dir, settings={"archive_mode": "on", "archive_command": command}
    ) as cluster:
        cluster.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100000) g")
        segment = switch_wal_and_wait(cluster.psql)
        assert cluster.psql("SELECT failed_count FROM pg_stat_archiver") == "0"

        stored = list((archive_dir / "repo" / "wms" / "wal").rglob(f"{segment}-*.zst.age"))
        assert len(stored) == 1
        # fetched back (as root, who holds the key) it is a valid WAL segment again
        fetched = tmp_path / segment
        subprocess.run(
            [LIFEBOAT, "--config", str(config), "wal-fetch", "wms", segment, str(fetched)],
            check=True,
            capture_output=True,
        )
        assert fetched.stat().st_size == 16 * 1024 * 1024
        dump = subprocess.run(
            [str(cluster.bin_dir / "pg_waldump"), str(fetched)], capture_output=True, text=True
        )
        assert "rmgr: Heap" in dump.stdout or "rmgr: Heap2" in dump.stdout

        # PostgreSQL may push a segment again after a crash: the same bytes are fine
        again = subprocess.run(
            [LIFEBOAT, "--config", str(config), "wal-push", "wms", str(fetched)],
            capture_output=True,
            text=True,
        )
        assert again.returncode == 0, again.stderr
        # a different file under an archived name is refused and nothing is overwritten
        # (a whole segment of the same cluster, one byte changed after its page header)
        forged = tmp_path / "forged" / segment
        forged.parent.mkdir()
        changed = bytearray(fetched.read_bytes())
        changed[100] ^= 0xFF
        forged.write_bytes(bytes(changed))
        refused = subprocess.run(
            [LIFEBOAT, "--config", str(config), "wal-push", "wms", str(forged)],
            capture_output=True,
            text=True,
        )
        assert refused.returncode == 1
        assert "refusing to overwrite" in refused.stderr
        assert list((archive_dir / "repo" / "wms" / "wal").rglob(f"{segment}-*")) == stored

        missing = subprocess.run(
            [
                LIFEBOAT,
                "--config",
                str(config),
                "wal-fetch",
                "wms",
                "0000000900000009000000FF",
                str(tmp_path / "none"),
            ],
            capture_output=True,
            text=True,
        )
        assert missing.returncode == 1 and "not in the archive" in missing.stderr
