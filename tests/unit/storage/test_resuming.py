"""The resuming reader the object-storage backends share: a cut body is reopened where it
stopped. The bodies are fakes: cutting a real connection at a chosen byte is done by the
backends' own tests, through a proxy."""

from __future__ import annotations

import io

import pytest

from lifeboat.storage.resuming import ChunkBody, ResumingReader, Truncated

pytestmark = pytest.mark.unit

DATA = bytes(range(256)) * 40


class CutBody:
    """DATA from start, failing once after `cut` bytes (or ending early, quietly)."""

    def __init__(self, start: int, cut: int | None, quietly: bool = False) -> None:
        self._stream = io.BytesIO(DATA[start:])
        self._left = cut
        self._quietly = quietly

    def read(self, size: int) -> bytes:
        if self._left is not None:
            if self._left == 0:
                if self._quietly:
                    return b""
                raise ConnectionResetError("reset by peer")
            size = min(size, self._left)
            self._left -= size
        return self._stream.read(size)

    def close(self) -> None:
        pass


def reader(
    cuts: list[int | None], start: int = 0, end: int | None = len(DATA), **kw: bool
) -> tuple[ResumingReader, list[int], list[tuple[str, int]]]:
    opened: list[int] = []
    failures: list[tuple[str, int]] = []

    def reopen(position: int) -> CutBody:
        opened.append(position)
        return CutBody(position, cuts.pop(0) if cuts else None, **kw)

    def after_failure(exc: Exception, count: int) -> None:
        failures.append((type(exc).__name__, count))
        if count >= 3:
            raise RuntimeError("gave up") from exc

    first = CutBody(start, cuts.pop(0) if cuts else None, **kw)
    return ResumingReader(first, start, end, reopen, after_failure, 1000), opened, failures


def test_a_cut_body_is_reopened_where_it_stopped() -> None:
    stream, opened, failures = reader([1234, 5000])
    assert stream.readall() == DATA
    assert opened == [1234, 6234]
    assert failures == [("ConnectionResetError", 1), ("ConnectionResetError", 1)]


def test_a_body_that_ends_early_is_truncated_and_resumed() -> None:
    stream, opened, failures = reader([100], start=50, quietly=True)
    assert io.BufferedReader(stream).read() == DATA[50:]
    assert opened == [150]
    assert failures == [("Truncated", 1)]


def test_it_gives_up_as_the_backend_says() -> None:
    stream, _, failures = reader([10, 0, 0, 0])
    with pytest.raises(RuntimeError, match="gave up"):
        stream.readall()
    assert [count for _, count in failures] == [1, 2, 3]  # counted per read, not per body


def test_without_a_known_end_an_empty_read_is_the_end() -> None:
    stream, opened, _ = reader([], end=None)
    assert stream.readall() == DATA and opened == []


def test_chunk_body_reads_across_chunks() -> None:
    body = ChunkBody(iter([b"abc", b"", b"defg"]))
    assert [body.read(2), body.read(2), body.read(10), body.read(1)] == [b"ab", b"c", b"defg", b""]
    assert issubclass(Truncated, ConnectionError)
