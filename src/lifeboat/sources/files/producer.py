"""The archive of a files backup, produced by a process of its own.

Walking the tree, reading, hashing and framing each file is Python work; compressing and
encrypting what it produced is work that holds the interpreter too (age's encryption in
pyrage does). In one process the two take turns, in two they run at once, as
`tar | zstd | age` does: the backup reads this process's standard output as its plaintext.
It writes the index to a file and, at the end, what it counted and what it could not
read (the Tally) to another, both in the backup's private folder.

Run as `python -m lifeboat.sources.files.producer REQUEST.json`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lifeboat.pipeline.stream import ProcessOutput
from lifeboat.sources.files.archive import ArchiveStream, Tally
from lifeboat.sources.files.select import Excludes, walk
from lifeboat.util.memory import keep_freed_memory


@dataclass(frozen=True)
class ProducerRequest:
    roots: list[str]
    exclude: list[str]
    one_file_system: bool
    index: str  # where the index goes
    tally: str  # where the counts go, once the archive is complete


class ArchiveProducer(ProcessOutput):
    """The producer process's output, as a readable; its tally once it is read to the end."""

    def __init__(self, request: ProducerRequest, folder: Path) -> None:
        request_path = folder / "request.json"
        request_path.write_text(json.dumps(asdict(request)), encoding="utf-8")
        self._request = request
        super().__init__(
            [sys.executable, "-m", __name__, str(request_path)],
            os.environ,
            "reading the files",
        )

    def read(self, size: int = -1) -> bytes:
        # what the pipe holds now: waiting for a whole read's worth stalls the producer
        return self._read_available(size)

    def tally(self) -> Tally:
        body = json.loads(Path(self._request.tally).read_text(encoding="utf-8"))
        return Tally.from_json(body)


def produce(request: ProducerRequest, out_fd: int) -> None:
    unreadable: list[tuple[str, str]] = []
    with open(request.index, "w", encoding="ascii", newline="\n") as index_out:
        entries = walk(
            request.roots, Excludes(request.exclude), request.one_file_system, unreadable
        )
        stream = ArchiveStream(entries, index_out)
        write_pieces(out_fd, stream.pieces())
    for name, why in unreadable:
        stream.tally.skip(name, f"cannot be read: {why}")
    Path(request.tally).write_text(json.dumps(stream.tally.to_json()), encoding="utf-8")


BATCH_PIECES = 512  # well under IOV_MAX (1024 on Linux)
# a quarter of the (1 MiB) pipe: the backup reads what is there while more is written,
# where batches as large as the pipe made each side wait for the other (7% slower)
BATCH_BYTES = 256 << 10


def write_pieces(fd: int, pieces: Iterable[bytes]) -> None:
    """Write pieces to fd in batches of about BATCH_BYTES, each with one writev(2): a
    small file is a piece of its own, and a write(2) each, or a copy of each into a
    buffer, would cost more than the rest of its archiving."""
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= BATCH_BYTES or len(batch) >= BATCH_PIECES:
            _write_all(fd, batch, size)
            batch, size = [], 0
    if batch:
        _write_all(fd, batch, size)


def _write_all(fd: int, buffers: list[bytes], size: int) -> None:
    written = os.writev(fd, buffers)
    while written < size:  # a signal, or a pipe with less room: go on where it stopped
        size -= written
        while written >= len(buffers[0]):
            written -= len(buffers.pop(0))
        buffers[0] = buffers[0][written:]
        written = os.writev(fd, buffers)


def main(argv: Sequence[str]) -> int:
    keep_freed_memory()
    body = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    produce(ProducerRequest(**body), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
