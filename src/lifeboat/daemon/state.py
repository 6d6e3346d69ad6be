"""What the daemon remembers between runs, per job: when it was first scheduled, when it
last started and how that ended, and a pending retry. One JSON file per configuration in
the state folder (lifeboat.util.statedir), replaced atomically after every change."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from lifeboat.util.fs import write_atomically

log = logging.getLogger(__name__)

FORMAT = 1
Result = Literal["ok", "failed", "cancelled"]


@dataclass
class JobRecord:
    # when the daemon first saw the job: a job never run is due at its first fire after
    since: datetime
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_result: Result | None = None
    last_error: str | None = None
    # failed attempts of the current run so far, and when the next one is due
    failures: int = 0
    retry_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in asdict(self).items()
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        moments = ("since", "last_started", "last_finished", "retry_at")
        values: dict[str, Any] = {
            name: datetime.fromisoformat(value) if name in moments and value else value
            for name, value in data.items()
        }
        return cls(**values)


@dataclass
class StateFile:
    path: Path
    records: dict[str, JobRecord] = field(default_factory=dict)

    def load(self) -> None:
        """Read the file; a missing one is a first start, a damaged one a warning and an
        empty state (each job is then due at its first fire from now on)."""
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            self.records = {
                name: JobRecord.from_json(record) for name, record in data["jobs"].items()
            }
        except FileNotFoundError:
            self.records = {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning(
                "the daemon's state file %s is unreadable (%s): starting without it, each "
                "job runs at its next time",
                self.path,
                exc,
            )
            self.records = {}

    def save(self) -> None:
        """Raises OSError."""
        data = {
            "format": FORMAT,
            "jobs": {name: record.to_json() for name, record in sorted(self.records.items())},
        }
        write_atomically(self.path, json.dumps(data, indent=2).encode() + b"\n")


def config_key(config_path: Path) -> str:
    """A short name for one configuration file, so that two configurations sharing a state
    folder keep apart what they remember (the file's absolute path, hashed)."""
    absolute = str(config_path.expanduser().resolve())
    return hashlib.sha256(absolute.encode()).hexdigest()[:16]


def state_file(folder: Path, config_path: Path) -> Path:
    return folder / f"daemon-{config_key(config_path)}.json"


def lock_file(folder: Path, config_path: Path) -> Path:
    return folder / f"daemon-{config_key(config_path)}.lock"
