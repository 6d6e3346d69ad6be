"""A separate process acting on a storage, for the contract tests that need real processes:
racing exclusive creates, and a writer killed in the middle of an upload.

    python -m tests.contract.storage_child create URL PART_SIZE KEY DATA
        prints "ready", waits for a line on stdin (the start signal, so that every
        contender starts together), then prints "won" or "lost".
    python -m tests.contract.storage_child hang URL PART_SIZE KEY SIZE
        writes SIZE bytes to KEY, then prints "blocked" and waits on stdin without ever
        finishing the write: the test kills it there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from lifeboat.repo.layout import object_kind
from lifeboat.storage.base import AlreadyExists, Storage
from lifeboat.storage.capabilities import exclusive_create
from lifeboat.storage.options import StorageOptions
from lifeboat.storage.registry import open_storage


def opened(url: str, part_size: int) -> Storage:
    """The storage at url; a part size only where uploads come in parts (a local repository
    refuses the option)."""
    parted = url.partition("://")[0] in ("s3", "az", "gs")
    options = StorageOptions(part_size=part_size) if parted else StorageOptions()
    return open_storage(url, options, classify=object_kind)


def create(url: str, part_size: int, key: str, data: str) -> None:
    creator = exclusive_create(opened(url, part_size))
    assert creator is not None
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        creator.create_exclusive(key, data.encode())
    except AlreadyExists:
        print("lost", flush=True)
    else:
        print("won", flush=True)


def hang(url: str, part_size: int, key: str, size: int) -> None:
    storage = opened(url, part_size)

    def chunks() -> Iterator[bytes]:
        left = size
        while left:
            piece = os.urandom(min(left, 1 << 20))
            left -= len(piece)
            yield piece
        print("blocked", flush=True)
        sys.stdin.readline()  # never answered: the process is killed here
        raise SystemExit("the test was to kill this writer")

    storage.write(key, chunks())


if __name__ == "__main__":
    command, url, part_size, key, argument = sys.argv[1:]
    if command == "create":
        create(url, int(part_size), key, argument)
    else:
        hang(url, int(part_size), key, int(argument))
