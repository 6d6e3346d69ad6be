"""An application writing to an SQLite database without pause, for the SQLite backup tests.

    python -m tests.integration.sqlite_writer DATABASE

Inserts one row into events per transaction (ids 1, 2, 3... with a note and a blob), each
committed at once, as a busy application does, until it is killed. Waits for locks as
applications do (a busy timeout), so a backup holding writers off delays it, and a write it
cannot make at all ends it with an error (the test sees it exited)."""

from __future__ import annotations

import os
import sqlite3
import sys


def main(path: str) -> None:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    print("ready", flush=True)
    number = 0
    while True:
        number += 1
        conn.execute(
            "INSERT INTO events (note, payload) VALUES (?, ?)",
            (f"event {number} ✓", os.urandom(64)),
        )


if __name__ == "__main__":
    main(sys.argv[1])
