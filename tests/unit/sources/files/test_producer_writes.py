"""The archive producer's batched writes: every byte, in order, even when a signal cuts a
writev(2) short."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

from lifeboat.sources.files.producer import BATCH_BYTES, write_pieces


def pieces() -> Iterator[bytes]:
    # small files' pieces and large files' chunks, as the archive yields them
    for number in range(3000):
        yield os.urandom(100 + number % 4000)
    for _ in range(4):
        yield os.urandom(1 << 20)


def test_batches_arrive_whole_and_in_order_through_interrupted_writes() -> None:
    expected = list(pieces())
    read_end, write_end = os.pipe()
    received = bytearray()

    def slow_reader() -> None:
        while data := os.read(read_end, 7000):
            received.extend(data)
            time.sleep(0.0002)  # the pipe stays full: each writev waits, and is interrupted

    interrupted: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda number, frame: interrupted.append(number))
    reader = threading.Thread(target=slow_reader)
    reader.start()
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    try:
        write_pieces(write_end, iter(expected))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.close(write_end)
        reader.join()
        os.close(read_end)
    assert interrupted  # the signals did arrive while writing
    assert bytes(received) == b"".join(expected)
    assert sum(map(len, expected)) > 4 * BATCH_BYTES
