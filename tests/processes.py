"""What the tests see of processes through /proc (Linux): what runs, what a process started,
who holds a lock, and killing processes at a moment the test chose, then waiting for them
to be gone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tests.waiting import wait_for


def command_line(pid: int) -> list[str]:
    """The arguments of a process; [] once it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def processes_running(*arguments: str) -> list[int]:
    """Pids of the processes whose command line holds `arguments`, one after the other."""
    wanted = list(arguments)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        line = command_line(int(entry))
        if any(line[i : i + len(wanted)] == wanted for i in range(len(line))):
            found.append(int(entry))
    return sorted(found)


def child_pids(pid: int) -> list[int]:
    """The processes pid started that still run (every thread's children)."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                children += [int(child) for child in text.split()]
    return children


def descendants(pid: int) -> list[int]:
    """pid's children, their children, and so on."""
    found: list[int] = []
    pending = child_pids(pid)
    while pending:
        child = pending.pop()
        found.append(child)
        pending += child_pids(child)
    return found


def is_gone(pid: int) -> bool:
    """No such process any more, or only its exit status is left. Every thread counts: a
    killed process's first thread may be a zombie already while the others still run, and
    hold its files and locks until the last of them is gone. (A zombie holds nothing; one
    that is not our child may stay one for long.)"""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for thread in threads:
        try:
            stat = Path(f"/proc/{pid}/task/{thread}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if stat.rpartition(")")[2].split()[0] not in ("Z", "X"):
            return False
    return True


@contextlib.contextmanager
def running(command: list[str], **options: Any) -> Iterator[subprocess.Popen[Any]]:
    """command started (subprocess.Popen's options), for the block; killed and reaped
    afterwards when it still runs, so that a failing test leaves no process behind."""
    process = subprocess.Popen(command, **options)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def kill_and_wait(pids: Iterable[int], what: str) -> None:
    """SIGKILL each process, then wait until each is gone."""
    victims = list(pids)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: all(is_gone(pid) for pid in victims), f"{what} to be gone", timeout=30)


def kill_wal_workers(config: Path) -> None:
    """Every background WAL worker (push or prefetch) started with this configuration: the
    one that holds its spool's lock, and any that a wal-push started meanwhile, which waits
    for the lock to take over from the first."""
    workers = processes_running("--config", str(config.absolute()), "wal-worker")
    kill_and_wait(workers, "the WAL workers")


def lock_holders(path: Path) -> set[int]:
    """Processes holding a flock on path, from /proc/locks."""
    inode = path.stat().st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            holders.add(int(fields[4]))
    return holders


def process_states(pids: Iterable[int]) -> dict[int, str]:
    """State, parent and command line of each process, to show in a failure message."""
    states = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            states[pid] = f"{status[2]} {status[6]} {' '.join(command_line(pid))}"
        except (OSError, IndexError) as exc:
            states[pid] = str(exc)
    return states
