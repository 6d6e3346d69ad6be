"""A process that takes a repository lock when told to, for the lock race tests.

    python -m tests.integration.lock_child URL NAME

Reads commands on stdin, one a line, so that one process serves many rounds:
    take PURPOSE  tries the lock `NAME`; prints "held" (and keeps it) or "refused MESSAGE"
    release       gives a held lock back; prints "released"
Prints "ready" first, once the storage is open.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack

from lifeboat.errors import LockedError
from lifeboat.repo.layout import object_kind
from lifeboat.repo.lock import repository_lock
from lifeboat.storage.registry import open_storage


def main(url: str, name: str) -> None:
    storage = open_storage(url, classify=object_kind)
    held = ExitStack()
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, purpose = line.strip().partition(" ")
        if command == "take":
            try:
                held.enter_context(repository_lock(storage, name, purpose))
            except LockedError as exc:
                print(f"refused {exc}", flush=True)
            else:
                print("held", flush=True)
        elif command == "release":
            held.close()
            print("released", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
