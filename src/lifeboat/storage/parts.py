"""Cutting a producer's chunks into upload parts of one size, for the object-storage
backends (S3 multipart parts, Azure blocks, GCS resumable chunks)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# a part as the producer's pieces: joined only when it is sent, so that a part waiting for
# a free upload slot does not exist twice in memory
Pieces = list[bytes | memoryview]


class PartSplitter:
    """Parts of exactly part_size bytes, the last one shorter (or empty, for an empty
    object). The producer's own errors come out unchanged."""

    def __init__(self, chunks: Iterable[bytes], part_size: int) -> None:
        self._chunks = iter(chunks)
        self._part_size = part_size
        self._carry: bytes | memoryview = b""
        self._exhausted = False

    def _next_piece(self) -> bytes | memoryview | None:
        if self._carry:
            piece, self._carry = self._carry, b""
            return piece
        while not self._exhausted:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._exhausted = True
                break
            if chunk:
                # copy a bytearray or memoryview: the producer may reuse its buffer
                return chunk if type(chunk) is bytes else bytes(chunk)
        return None

    def has_more(self) -> bool:
        """Whether another part follows (reads ahead one chunk to know)."""
        if not self._carry:
            piece = self._next_piece()
            if piece is None:
                return False
            self._carry = piece
        return True

    def next_part(self) -> Pieces:
        pieces: Pieces = []
        size = 0
        while size < self._part_size:
            piece = self._next_piece()
            if piece is None:
                break
            room = self._part_size - size
            if len(piece) > room:
                view = memoryview(piece)
                piece, self._carry = view[:room], view[room:]
            pieces.append(piece)
            size += len(piece)
        return pieces

    def __iter__(self) -> Iterator[Pieces]:
        """The parts not taken yet."""
        while self.has_more():
            yield self.next_part()


def join_pieces(pieces: Pieces) -> bytes:
    data = b"".join(pieces)
    pieces.clear()  # drop the pieces now, not when the caller's list goes away
    return data
