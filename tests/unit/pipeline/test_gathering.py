"""Encrypted output gathered into large pieces before hashing and storing."""

from __future__ import annotations

import os

from lifeboat.pipeline.stream import CHUNK, ChunkQueue, Gathering


class Collecting:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(data)
        return len(data)


def test_small_writes_are_passed_on_in_pieces_of_a_chunk_or_more() -> None:
    sink = Collecting()
    gathering = Gathering(sink)
    writes = [os.urandom(65_552) for _ in range(40)]  # age's 64 KiB chunks and their tags
    for data in writes:
        assert gathering.write(data) == len(data)
    assert all(len(piece) >= CHUNK for piece in sink.pieces)
    gathering.finish()
    assert b"".join(sink.pieces) == b"".join(writes)
    assert len(sink.pieces) == 3  # 16 writes make a chunk: 16, 16, then the last 8
    assert len(sink.pieces[-1]) < CHUNK


def test_finish_without_writes_passes_nothing_on() -> None:
    sink = Collecting()
    Gathering(sink).finish()
    assert sink.pieces == []


def test_a_chunk_queue_takes_a_large_piece_as_it_is() -> None:
    queue = ChunkQueue()
    piece = os.urandom(CHUNK + 5)
    small = b"tail"
    queue.write(piece)
    queue.write(small)
    queue.finish()
    chunks = list(queue.chunks())
    assert chunks[0] is piece  # not copied
    assert chunks[1:] == [small]
