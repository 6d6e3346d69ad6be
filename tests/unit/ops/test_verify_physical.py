"""Deep verification of a base backup's files against its backup_manifest, in the stream."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from lifeboat.errors import IntegrityError
from lifeboat.ops.verify import ManifestFiles, manifest_checksum


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _manifest(files: dict[str, bytes]) -> bytes:
    return json.dumps(
        {
            "Files": [
                {
                    "Path": name,
                    "Size": len(data),
                    "Checksum-Algorithm": "SHA256",
                    "Checksum": hashlib.sha256(data).hexdigest(),
                }
                for name, data in files.items()
            ]
        }
    ).encode()


FILES = {
    "base/1/1259": b"a" * 9000,
    "global/pg_control": b"c" * 8192,
    "PG_VERSION": b"17\n",
    "pg_tblspc/16384/PG_17_202406281/5/16390": b"t" * 8192,
}


def _check(manifest_files: dict[str, bytes], tar_files: dict[str, bytes]) -> list[str]:
    files = ManifestFiles(_manifest(manifest_files))
    base = {k: v for k, v in tar_files.items() if not k.startswith("pg_tblspc/16384/")}
    space = {
        k.removeprefix("pg_tblspc/16384/"): v
        for k, v in tar_files.items()
        if k.startswith("pg_tblspc/16384/")
    }
    for archive, prefix in [({**base, "backup_manifest": b"{}"}, ""), (space, "pg_tblspc/16384/")]:
        data = _tar(archive)
        checker = files.archive(prefix)
        for start in range(0, len(data), 700):
            checker.write(data[start : start + 700])
    return files.finish()


def test_an_intact_backup_has_no_problems() -> None:
    assert _check(FILES, FILES) == []


def test_a_changed_file_in_a_tablespace_is_named() -> None:
    changed = {**FILES, "pg_tblspc/16384/PG_17_202406281/5/16390": b"t" * 8191 + b"x"}
    assert _check(FILES, changed) == [
        "pg_tblspc/16384/PG_17_202406281/5/16390: checksum does not match the backup_manifest"
    ]


def test_a_changed_file_is_named() -> None:
    changed = {**FILES, "base/1/1259": b"a" * 8999 + b"b"}
    assert _check(FILES, changed) == ["base/1/1259: checksum does not match the backup_manifest"]


def test_sizes_missing_and_extra_files_are_named() -> None:
    shorter = {**FILES, "PG_VERSION": b"1\n"}
    del shorter["global/pg_control"]
    shorter["stray"] = b"x"
    problems = _check(FILES, shorter)
    assert "PG_VERSION: 2 bytes, backup_manifest says 3" in problems
    assert "stray is in the backup but not in its backup_manifest" in problems
    assert "1 files of the backup_manifest are missing, e.g. global/pg_control" in problems


def test_crc32c_as_postgresql_writes_it() -> None:
    # Checksum PostgreSQL 15 wrote in a real backup_manifest for a PG_VERSION holding "15\n"
    manifest = json.dumps(
        {
            "Files": [
                {
                    "Path": "PG_VERSION",
                    "Size": 3,
                    "Checksum-Algorithm": "CRC32C",
                    "Checksum": "8a744722",
                }
            ]
        }
    ).encode()

    def check(content: bytes) -> list[str]:
        files = ManifestFiles(manifest)
        files.archive().write(_tar({"PG_VERSION": content}))
        return files.finish()

    assert check(b"15\n") == []
    assert check(b"16\n") == ["PG_VERSION: checksum does not match the backup_manifest"]


def test_an_unknown_checksum_algorithm_is_refused() -> None:
    with pytest.raises(IntegrityError, match="unknown checksum algorithm 'MD5'"):
        manifest_checksum("MD5")
