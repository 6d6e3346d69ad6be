"""Advisory locks stored in the repository, so they work on any backend.

A lock names its host and pid; one whose process is gone (same host) or that is older than
STALE_AFTER (another host) is taken over."""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from lifeboat.errors import LockedError
from lifeboat.repo import layout
from lifeboat.storage.base import NotFound, Storage

STALE_AFTER = timedelta(hours=24)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(storage: Storage, key: str) -> dict[str, Any] | None:
    try:
        with storage.read(key) as stream:
            data: dict[str, Any] = json.loads(stream.read())
            return data
    except NotFound:
        return None
    except ValueError:
        return {}


def _is_live(holder: dict[str, Any]) -> bool:
    try:
        started = datetime.fromisoformat(holder["started_at"])
        pid = int(holder["pid"])
    except (KeyError, ValueError, TypeError):
        return False
    if holder.get("host") == socket.gethostname():
        return _alive(pid)
    return datetime.now(UTC) - started < STALE_AFTER


@contextmanager
def repository_lock(storage: Storage, name: str, purpose: str) -> Iterator[None]:
    key = layout.lock_key(name)
    holder = _read(storage, key)
    if holder is not None and _is_live(holder):
        raise LockedError(
            f"{name} is locked by {holder.get('purpose', 'another run')} "
            f"(pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started_at')})"
        )
    token = secrets.token_hex(8)
    mine = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(),
        "purpose": purpose,
        "token": token,
    }
    storage.write(key, [json.dumps(mine).encode()])
    confirmed = _read(storage, key)
    if not confirmed or confirmed.get("token") != token:
        raise LockedError(f"{name} was locked by another run at the same moment: try again")
    try:
        yield
    finally:
        current = _read(storage, key)
        if current and current.get("token") == token:
            storage.delete(key)
