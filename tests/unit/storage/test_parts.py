"""The part splitter the object-storage backends share."""

from __future__ import annotations

import pytest

from lifeboat.storage.parts import PartSplitter, join_pieces

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 29, 30, 31])
@pytest.mark.parametrize("chunk", [1, 3, 10, 64])
def test_parts_are_exactly_part_size_but_the_last(size: int, chunk: int) -> None:
    data = bytes(range(256))[:size] if size <= 256 else b""
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    splitter = PartSplitter(chunks, 10)
    parts = [join_pieces(splitter.next_part())]
    parts += [join_pieces(pieces) for pieces in splitter]
    assert b"".join(parts) == data
    assert all(len(part) == 10 for part in parts[:-1])
    assert 0 < len(parts[-1]) <= 10 or size == 0
    assert len(parts) == max(1, -(-size // 10))


def test_a_reused_producer_buffer_does_not_change_parts_already_cut() -> None:
    buffer = bytearray(b"a" * 6)

    def producer() -> object:
        for letter in b"abc":
            buffer[:] = bytes([letter]) * 6
            yield buffer

    splitter = PartSplitter(producer(), 4)  # type: ignore[arg-type]
    parts = [join_pieces(pieces) for pieces in splitter]
    assert parts == [b"aaaa", b"aabb", b"bbbb", b"cccc", b"cc"]


def test_the_producers_errors_come_out_unchanged() -> None:
    def failing() -> object:
        yield b"12345"
        raise OSError("disk gone")

    splitter = PartSplitter(failing(), 4)  # type: ignore[arg-type]
    assert join_pieces(splitter.next_part()) == b"1234"
    with pytest.raises(OSError, match="disk gone"):
        list(splitter)
