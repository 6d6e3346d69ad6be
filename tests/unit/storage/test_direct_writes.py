"""Large local objects are written with O_DIRECT a whole aligned buffer at a time, the
tail the ordinary way, and every byte lands where it belongs."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest

from lifeboat.storage.direct import BUFFER, AlignedWriter
from lifeboat.storage.local import LocalStorage


def direct_writes_work(folder: Path) -> bool:
    try:
        fd = os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    (folder / "probe").unlink()
    return True


def write_all(path: Path, pieces: list[bytes]) -> list[bool]:
    """Write pieces through an AlignedWriter; whether each flush went direct."""
    flushes: list[bool] = []
    with path.open("wb", buffering=0) as handle:
        writer = AlignedWriter(handle)
        real_flush = writer._flush

        def noted_flush() -> None:
            flushes.append(writer.direct)
            real_flush()

        writer._flush = noted_flush  # type: ignore[method-assign]
        try:
            for piece in pieces:
                writer.write(piece)
            writer.finish()
        finally:
            writer.close()
    return flushes


@pytest.mark.parametrize(
    "sizes",
    [
        [],
        [1],
        [BUFFER - 1],
        [BUFFER],
        [BUFFER + 1],
        [1000, BUFFER, 3 * BUFFER + 12345, 7],
    ],
)
def test_every_byte_lands_in_order(tmp_path: Path, sizes: list[int]) -> None:
    pieces = [os.urandom(size) for size in sizes]
    path = tmp_path / "object"
    flushes = write_all(path, pieces)
    assert path.read_bytes() == b"".join(pieces)
    total = sum(sizes)
    if direct_writes_work(tmp_path):
        # every whole buffer direct, then the tail (possibly empty) written ordinarily
        assert flushes == [True] * (total // BUFFER) + [False]


def test_the_file_is_left_ordinary_after_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "object"
    with path.open("wb", buffering=0) as handle:
        writer = AlignedWriter(handle)
        writer.write(b"x" * (BUFFER + 3))
        writer.finish()
        writer.close()
        assert not fcntl.fcntl(handle.fileno(), fcntl.F_GETFL) & os.O_DIRECT


def test_a_file_system_refusing_direct_writes_gets_ordinary_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every file system at hand takes O_DIRECT (tmpfs too, since Linux 6.6), so the refusal
    # an older tmpfs gives (EINVAL on the first direct write) is made here.
    path = tmp_path / "object"
    data = os.urandom(2 * BUFFER + 5)
    refused: list[int] = []
    with path.open("wb", buffering=0) as handle:

        class Refusing:
            def write(self, chunk: memoryview) -> int | None:
                if writer.direct:
                    refused.append(len(chunk))
                    raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
                return handle.write(chunk)

            def fileno(self) -> int:
                return handle.fileno()

        writer = AlignedWriter(Refusing())
        writer.direct = True
        writer.write(data)
        writer.finish()
        writer.close()
    assert refused == [BUFFER]  # refused once, then ordinary writes throughout
    assert path.read_bytes() == data


def test_local_storage_stores_large_objects_exactly(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "repo")
    chunks = [os.urandom(1 << 20) for _ in range(9)] + [os.urandom(777)]
    info = storage.write("big/object", chunks)
    assert info.size == sum(len(c) for c in chunks)
    with storage.read("big/object") as stream:
        assert stream.read() == b"".join(chunks)
    assert [p.name for p in (tmp_path / "repo/big").iterdir()] == ["object"]
