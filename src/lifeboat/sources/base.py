"""What a kind of source offers: the one shape every backup source has.

A source kind (a PostgreSQL database dumped with pg_dump, a PostgreSQL cluster copied with
pg_basebackup; later a Redis instance, a folder of files, an SQLite database) backs up one
configured source into its repositories, restores one of its backups, says what is
particular about a backup of its kind, and checks before a backup that one can work. The
commands go through this protocol, so a new kind is one more implementation of it (under
sources/<system>/) rather than one more branch in each command.

An implementation is built with the options of one run (for a physical backup: how long to
wait for WAL, incremental or not), so the methods take only what every kind has: the run's
context and the source's name. A restore's options differ too much between kinds to share:
each kind names its request type (the protocol's type parameter)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from lifeboat.repo.drills import CheckResult, Phase, TableComparison

if TYPE_CHECKING:
    from lifeboat.config.model import DrillCheckConfig
    from lifeboat.context import Context
    from lifeboat.repo.catalog import Repository
    from lifeboat.repo.manifest import Manifest


class BackupOutcome(Protocol):
    """What a backup reports: its manifest, and which repositories got it."""

    @property
    def manifest(self) -> Manifest: ...

    @property
    def repository(self) -> str:
        """The first repository that holds the backup."""
        ...

    @property
    def repositories(self) -> list[str]:
        """Every repository that holds it."""
        ...

    @property
    def failed(self) -> dict[str, str]:
        """Repository -> why it did not get the backup (the others hold it)."""
        ...

    @property
    def removed_leftovers(self) -> list[str]: ...


class RestoreOutcome(Protocol):
    def summary(self) -> dict[str, Any]:
        """What the restore did, for --json and the text report."""
        ...


class PhaseClock:
    """Times a drill's phases one after another, from the moment the drill began."""

    def __init__(self, began: float) -> None:
        self.began = began
        self.phases: list[Phase] = []
        # when the restored database accepted connections and matched the backup's evidence
        self.ready_at: float | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        if not self.phases:
            # what came before the first phase (the command's start, the configuration and
            # the repository read, the key, binaries and space checked) counts too
            self.phases.append(Phase("prepare", round(start - self.began, 3)))
        try:
            yield
        finally:
            self.phases.append(Phase(name, round(time.monotonic() - start, 3)))

    def ready(self) -> None:
        self.ready_at = time.monotonic()

    @property
    def rto_seconds(self) -> float | None:
        return None if self.ready_at is None else round(self.ready_at - self.began, 3)


@dataclass(frozen=True)
class DrillRequest:
    """One drill of one backup, as ops/drill.py asks a source kind for it."""

    manifest: Manifest
    repository: Repository
    started_at: datetime  # when the drill began: data-loss windows are measured from it
    depth: Literal["quick", "standard", "full"]
    checks: Sequence[DrillCheckConfig]
    work_dir: Path | None
    jobs: int
    target_dsn: str | None = None
    target_password_file: Path | None = None
    to_time: str | None = None
    config_path: Path | None = None


@dataclass
class DrillRun:
    """What a source kind measured while it restored a backup and checked it. Failures the
    backup is to blame for (a restore that fails, evidence that does not match) are
    problems; failures of the drill's own means (no key, no binaries, no space) raise."""

    clock: PhaseClock
    target: str = ""
    postgres_version: str = ""
    problems: list[str] = field(default_factory=list)
    tables: list[TableComparison] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    # the newest moment whose changes the restore brought back, and how it was found
    restored_up_to: datetime | None = None
    rpo_method: str = ""
    # the data-loss window: started_at (or a recovery target) minus restored_up_to
    rpo_seconds: float | None = None
    recovered_to: str | None = None

    def restored_to(self, moment: datetime, method: str, lost_from: datetime) -> None:
        """The restore brought back every change up to moment (as method found it): what
        came after, up to lost_from (the drill's start, or its recovery target), is the
        data-loss window."""
        self.restored_up_to = moment
        self.rpo_method = method
        self.rpo_seconds = round(max(0.0, (lost_from - moment).total_seconds()), 3)


RequestT = TypeVar("RequestT", contravariant=True)


class Source(Protocol[RequestT]):
    @property
    def kind(self) -> str:
        """The kind of backup it takes, e.g. postgres-logical."""
        ...

    def backup(self, ctx: Context, source: str) -> BackupOutcome:
        """Back up the configured source into its repositories."""
        ...

    def restore(self, ctx: Context, source: str, request: RequestT) -> RestoreOutcome:
        """Restore one of the source's backups as request says."""
        ...

    def describe(self, manifest: Manifest) -> dict[str, Any]:
        """What is particular to a backup of this kind (the rest of a manifest is common)."""
        ...

    def checks(self, ctx: Context, source: str) -> list[str]:
        """What would keep a backup of the source from working, found without writing
        anything; empty when nothing would."""
        ...

    def drill(self, ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
        """Restore the backup into a throw-away target, compare it with the backup's
        evidence and run the checks, timing each phase on clock; leave nothing behind."""
        ...


@dataclass(frozen=True)
class PathRestoreRequest:
    """A restore of a kind whose backup becomes files at a path (a Redis RDB file, a folder
    of files, an SQLite database file): which backup, where to, and whether what is there
    may be replaced."""

    to: Path
    backup: str = "latest"
    # files: only these paths of the archive (a folder with what is under it)
    paths: tuple[str, ...] = ()
    assume_yes: bool = False
    repository: str | None = None


class PathRestoreOutcome(Protocol):
    def summary(self) -> dict[str, Any]:
        """What the restore did, for --json."""
        ...

    def lines(self) -> list[str]:
        """What the restore did, as the text report prints it, one line each."""
        ...


class VerifiesDeeply(Protocol):
    """A kind whose `verify --deep` reads its backups back its own way (the kinds besides
    PostgreSQL's, whose deep checks ops/verify.py keeps)."""

    def verify_deep(self, ctx: Context, repo: Repository, manifest: Manifest) -> list[str]:
        """Read every object of the backup back from repo and check it as this kind can
        (its own format's checksums, the evidence in the manifest); the problems found,
        each one line. Failures of the means (no key, no tool) raise."""
        ...


class PathSource(Source[PathRestoreRequest], VerifiesDeeply, Protocol):
    """A kind restored to a path, which verifies its backups deeply its own way."""

    def restore(self, ctx: Context, source: str, request: PathRestoreRequest) -> PathRestoreOutcome:
        """Restore one of the source's backups to request.to, checked against its evidence
        before it is put in place; what is there is replaced only with assume_yes."""
        ...
