"""A process that appends audit events, for the concurrent append tests.

    python -m tests.integration.audit_child URL WRITER COUNT

Prints "ready" once the storage is open, waits for a line on stdin (so that every writer
starts at once), appends COUNT events tagged with WRITER, then prints their sequence numbers.
"""

from __future__ import annotations

import sys

from lifeboat.repo.audit import append
from lifeboat.repo.layout import object_kind
from lifeboat.storage.registry import open_storage


def main(url: str, writer: str, count: int) -> None:
    storage = open_storage(url, classify=object_kind)
    print("ready", flush=True)
    sys.stdin.readline()
    sequences = [
        append(storage, "hold", source="wms", details={"writer": writer, "n": n}).sequence
        for n in range(count)
    ]
    print(" ".join(map(str, sequences)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
