"""What a notification says: one event of one job, the same for every channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from lifeboat.config.model import NotificationEvent
from lifeboat.util.redact import hide_credentials, redact

# Outcomes that are never sent on their own (no channel can ask for them): they only end
# an open incident, and then go out as its "recovered" message. "test" is `notify test`.
QuietKind = Literal["verification_passed", "job_succeeded", "test"]
EventKind = NotificationEvent | QuietKind
Detail = str | int | float | bool | None

FAILURES: frozenset[str] = frozenset(
    {
        "backup_failed",
        "drill_failed",
        "verification_failed",
        "rpo_breached",
        "backup_overdue",
        "job_failed",
    }
)
# which incidents an outcome ends: a new backup is a new restorable point, so it also ends
# an RPO breach and an overdue backup of its source
ENDS: Mapping[str, tuple[str, ...]] = {
    "backup_succeeded": ("backup_failed", "backup_overdue", "rpo_breached"),
    "drill_passed": ("drill_failed",),
    "verification_passed": ("verification_failed",),
    "job_succeeded": ("job_failed",),
}

# incidents kept apart per backup type
PER_BACKUP_TYPE: frozenset[str] = frozenset({"backup_failed", "backup_overdue"})


@dataclass(frozen=True)
class Event:
    """kind: what happened; source: the source it happened to (None: every source or
    none); job: the job or command that saw it (backup, drill, a schedule's name...);
    summary: one line; details: facts for the reader (backup id, sizes, duration, drill
    verdict, RTO, RPO, the error line); recovers: the failure kinds this event ends (set
    when it goes out as a "recovered" message)."""

    kind: EventKind
    source: str | None
    job: str
    summary: str
    details: Mapping[str, Detail] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    recovers: tuple[str, ...] = ()
    ended: str | None = None  # the key of the (first) incident a recovery ends

    def incident(self, kind: str | None = None, typed: bool = True) -> str:
        """The key of the incident kind (default: this event's) opens for this source and
        job: its repeats are the same incident. A backup's failure or lateness is its type's
        (the event's `type` detail): a logical backup that succeeds says nothing of the
        physical one that fails."""
        what = kind or self.kind
        if what in ("job_failed", "job_succeeded"):
            return f"job_failed/{self.job}/{self.source or '*'}"
        backup_type = self.details.get("type")
        if what in PER_BACKUP_TYPE and backup_type and typed:
            return f"{what}/{self.source or '*'}/{backup_type}"
        return f"{what}/{self.source or '*'}"

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES

    @property
    def title(self) -> str:
        state = "recovered" if self.recovers else self.kind.replace("_", " ")
        return f"[lifeboat] {state}: {self.source or self.job}"

    def as_recovery(
        self, ended: tuple[str, ...], since: str, repeats: int, incident: str | None = None
    ) -> Event:
        """This event as the message that ends the incidents of kinds ended (the first of
        them keyed incident)."""
        details = {**self.details, "failing_since": since, "failures": repeats}
        return replace(
            self,
            summary=f"recovered: {self.summary}",
            details=details,
            recovers=ended,
            ended=incident,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "event": self.kind,
            "source": self.source,
            "job": self.job,
            "time": self.time.isoformat(),
            "summary": self.summary,
            "details": dict(self.details),
            "incident": self.ended or self.incident(self.recovers[0] if self.recovers else None),
            "recovered": bool(self.recovers),
        }

    def text(self) -> str:
        """A plain-text body: the summary, then one line per detail."""
        lines = [self.summary, ""]
        lines += [f"{name}: {value}" for name, value in self.details.items() if value is not None]
        lines += [
            f"source: {self.source or '-'}",
            f"job: {self.job}",
            f"time: {self.time.isoformat()}",
        ]
        return "\n".join(lines) + "\n"


def error_line(message: str) -> str:
    """An error line as a notification may carry it: one line, secrets hidden (it leaves
    the host)."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return hide_credentials(redact(first))
