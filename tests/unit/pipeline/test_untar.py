"""Extracting tar streams on several threads, fresh and with delta."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from lifeboat.pipeline.tar.extract import ExtractError, TarExtractor
from tests.mounts import small_tmpfs


def _archive(members: dict[str, bytes | str | None], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """name -> bytes (file), str (symlink target) or None (directory)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o600
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _extract(data: bytes, root: Path, chunk: int = 1 << 20, delta: bool = False) -> TarExtractor:
    extractor = TarExtractor(root, delta=delta)
    try:
        for start in range(0, len(data), chunk):
            extractor.write(data[start : start + chunk])
        extractor.finish()
    except BaseException:
        extractor.abort()
        raise
    return extractor


def _tree(root: Path) -> dict[str, bytes | str | None]:
    found: dict[str, bytes | str | None] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = os.readlink(path)
        elif path.is_dir():
            found[name] = None
        else:
            found[name] = path.read_bytes()
    return found


MEMBERS: dict[str, bytes | str | None] = {
    "base": None,
    "base/1": None,
    "base/1/1259": os.urandom(3 * 1024 * 1024 + 17),
    "base/1/empty": b"",
    "global/pg_control": b"c" * 8192,  # its folder has no entry of its own
    "d" * 120 + "/long": b"a long name",
    "pg_tblspc": None,
    "pg_tblspc/16384": "/srv/tablespace",
    "backup_label": b"START WAL LOCATION: 0/2000028\n",
}


def _expected() -> dict[str, bytes | str | None]:
    # folders the archive names only as parents of its members are made too
    return dict(sorted({**MEMBERS, "global": None, "d" * 120: None}.items()))


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 4096, 1 << 20])
def test_extracts_exactly_what_the_archive_holds(tmp_path: Path, fmt: int, chunk: int) -> None:
    data = _archive(MEMBERS, fmt)
    if chunk == 1:
        data_small = _archive({k: v for k, v in MEMBERS.items() if k != "base/1/1259"}, fmt)
        extractor = _extract(data_small, tmp_path, chunk)
        assert extractor.files == 4
        return
    extractor = _extract(data, tmp_path, chunk)
    assert _tree(tmp_path) == _expected()
    assert (tmp_path / "base/1/1259").stat().st_mode & 0o777 == 0o600
    assert extractor.bytes_written == sum(len(v) for v in MEMBERS.values() if isinstance(v, bytes))


def test_delta_writes_only_what_differs_and_removes_what_the_archive_lacks(
    tmp_path: Path,
) -> None:
    _extract(_archive(MEMBERS), tmp_path)
    changed = bytearray(MEMBERS["base/1/1259"])  # type: ignore[arg-type]
    changed[2 * 1024 * 1024 + 5] ^= 0xFF
    (tmp_path / "base/1/1259").write_bytes(changed)
    (tmp_path / "backup_label").write_bytes(b"a longer, different label than the one archived")
    (tmp_path / "base/1/stale").write_bytes(b"not in the backup")
    (tmp_path / "stale_dir/inner").mkdir(parents=True)
    (tmp_path / "pg_tblspc/16384").unlink()
    (tmp_path / "pg_tblspc/16384").symlink_to("/elsewhere")

    extractor = _extract(_archive(MEMBERS), tmp_path, delta=True)

    assert _tree(tmp_path) == _expected()
    # one 1 MiB chunk of the big file and the label were rewritten, nothing else
    assert extractor.bytes_written <= 1024 * 1024 + len(MEMBERS["backup_label"])  # type: ignore[arg-type]
    assert extractor.bytes_unchanged >= 2 * 1024 * 1024


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "base/../../escape"])
def test_refuses_members_outside_the_target(tmp_path: Path, name: str) -> None:
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(ExtractError, match="outside the target folder"):
        _extract(_archive({name: b"x"}), target)
    assert not (tmp_path / "escape").exists()


def test_a_truncated_archive_is_an_error(tmp_path: Path) -> None:
    data = _archive(MEMBERS)
    with pytest.raises(ExtractError, match="truncated"):
        _extract(data[: len(data) // 2], tmp_path)


def test_a_full_disk_is_one_clear_error(tmp_path: Path) -> None:
    with (
        small_tmpfs(tmp_path / "small", "1m") as small,
        pytest.raises(ExtractError, match="No space left on device"),
    ):
        _extract(_archive(MEMBERS), small)
