"""The single declaration of every configuration option: type, default and help."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, TypeGuard, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    field_validator,
    model_validator,
)

from lifeboat.repo.layout import check_source_name
from lifeboat.storage.options import StorageOptions, set_options, shown_url, unsupported


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _expand_home(cls, value: object) -> object:
        return value.expanduser() if isinstance(value, Path) else value


# the macros every cron knows (Vixie/Debian cron, cronie, Kubernetes), and croniter too
CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


DurationText = TypeVar("DurationText", str, str | None)


def checked_duration(
    value: DurationText, bound: Literal["any", "not negative", "positive"] = "any"
) -> DurationText:
    """value, when it is a duration (`90s`, `15m`, `2h30m`, `7d`...) within bound; else a
    ValueError. None passes: the option is not set."""
    if value is None:
        return value
    from lifeboat.policy.retention import parse_duration

    seconds = parse_duration(value).total_seconds()
    if bound == "positive" and seconds <= 0:
        raise ValueError("must be longer than 0s")
    if bound == "not negative" and seconds < 0:
        raise ValueError("must not be negative")
    return value


def known_zone(name: str) -> str:
    """name, when zoneinfo knows it as an IANA time zone; else a ValueError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


class RetentionConfig(_Strict):
    """What prune keeps. Every key may be left out: [retention] gives the defaults,
    [sources.NAME.retention] overrides them for a source, and [repositories.NAME.retention]
    for every source in that repository."""

    keep_last: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Never fewer than this many good (not failed verification) backups of "
        "each type; default 1.",
    )
    keep_hourly: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The newest backup of each of the last N hours with backups."
    )
    keep_daily: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The newest backup of each of the last N days with backups."
    )
    keep_weekly: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description="The newest backup of each of the last N ISO weeks with backups.",
    )
    keep_monthly: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The newest backup of each of the last N months with backups."
    )
    keep_yearly: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The newest backup of each of the last N years with backups."
    )
    keep_within: str | None = Field(
        default=None, description='Every backup younger than this, e.g. "2d", "36h", "12w".'
    )
    pitr_window: str | None = Field(
        default=None,
        description="Any moment this far back stays restorable: the newest physical backup "
        "older than it is kept, with the WAL from its start.",
    )
    safety_backups_expire_after: str | None = Field(
        default=None,
        description="How long the safety backup a restore takes of the database it replaces "
        'is kept (unless held); it counts for no other rule. Default "7d".',
    )
    timezone: str | None = Field(
        default=None,
        description="Time zone the hours, days, weeks, months and years are counted in "
        '(IANA name, e.g. "Europe/Berlin"); default UTC.',
    )

    @field_validator("keep_within", "pitr_window", "safety_backups_expire_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return checked_duration(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            known_zone(value)
        return value


class RepositoryConfig(_Strict):
    url: str = Field(
        description="Where backups live: a plain path, file:///path, "
        "s3://BUCKET/PREFIX?region=R&endpoint=URL, az://CONTAINER/PREFIX or gs://BUCKET/PREFIX."
    )
    storage_class: str | None = Field(
        default=None,
        description="S3/GCS storage class of backup data and WAL (e.g. STANDARD_IA, NEARLINE); "
        "manifests and locks stay in the default class.",
    )
    wal_storage_class: str | None = Field(
        default=None, description="Storage class of WAL objects, if not storage_class."
    )
    server_side_encryption: Literal["AES256", "aws:kms"] | None = Field(
        default=None, description="S3 server-side encryption, on top of Lifeboat's own."
    )
    kms_key_id: str | None = Field(
        default=None, description="KMS key for aws:kms (default: the bucket's key)."
    )
    object_lock_days: Annotated[int, Field(ge=1, le=36500)] | None = Field(
        default=None,
        description="S3 Object Lock retention of every new backup and WAL object, in days; "
        "the bucket must have Object Lock enabled.",
    )
    object_lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = Field(
        default="COMPLIANCE", description="COMPLIANCE: nobody can shorten the retention."
    )
    access_tier: Literal["Hot", "Cool", "Cold", "Archive"] | None = Field(
        default=None, description="Azure access tier of backup data and WAL."
    )
    part_size_mb: Annotated[int, Field(ge=5, le=5120)] = Field(
        default=16, description="Upload part (block, chunk) size in MiB for object storage."
    )
    upload_concurrency: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4,
        description="Parts of one object uploaded at once; memory is about "
        "part_size_mb x (upload_concurrency + 1) per object being written.",
    )
    max_attempts: Annotated[int, Field(ge=1, le=30)] = Field(
        default=8,
        description="Attempts of a request that failed transiently (timeout, throttling, 5xx), "
        "with exponential backoff and jitter.",
    )

    retention: RetentionConfig | None = Field(
        default=None, description="Retention overrides for every source in this repository."
    )
    upload_checksum: Literal["crc32c", "md5"] = Field(
        default="crc32c",
        description="S3: checksum sent with every upload and confirmed by the store; md5 for "
        "S3-compatible stores without flexible checksums.",
    )
    lock_stale_after: str = Field(
        default="24h",
        description="A lock whose holder runs on another host is taken over once it is this "
        'old (e.g. "24h", "90m"); one of a dead process on this host at once.',
    )
    upload_grace: str = Field(
        default="1h",
        description="Unfinished uploads of killed writers younger than this are left alone "
        "by backup, copy and prune, which remove the older ones.",
    )

    @field_validator("lock_stale_after", "upload_grace")
    @classmethod
    def _duration(cls, value: str) -> str:
        return checked_duration(value)

    @field_validator("lock_stale_after")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        from lifeboat.policy.retention import parse_duration

        if parse_duration(value).total_seconds() < 60:
            raise ValueError("must be at least 1m: a shorter one takes live locks over")
        return value

    def storage_options(self) -> StorageOptions:
        return StorageOptions(
            storage_class=self.storage_class,
            wal_storage_class=self.wal_storage_class,
            server_side_encryption=self.server_side_encryption,
            kms_key_id=self.kms_key_id,
            object_lock_days=self.object_lock_days,
            object_lock_mode=self.object_lock_mode,
            access_tier=self.access_tier,
            part_size=self.part_size_mb * 1024 * 1024,
            upload_concurrency=self.upload_concurrency,
            max_attempts=self.max_attempts,
            upload_checksum=self.upload_checksum,
        )

    @field_validator("url")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def unsupported_settings(self) -> list[str]:
        """Why the backend of this url cannot honour a setting this table changes from its
        default or a parameter of its URL; empty when it honours them all. A default written
        out (part_size_mb = 16 on a local folder) asks for nothing and is accepted, so that
        a file written before the check still loads."""
        return unsupported(self.url, set_options(self.storage_options()))


class EncryptionConfig(_Strict):
    age_recipients: list[str] = Field(
        default_factory=list, description="age public keys (age1...); backing up needs no secret."
    )
    age_identity_file: Path | None = Field(
        default=None, description="age private key file; only restore and verify --deep need it."
    )
    gpg_recipients: list[str] = Field(
        default_factory=list, description="GPG key ids, fingerprints or e-mails to encrypt to."
    )
    gpg_homedir: Path | None = Field(default=None, description="GPG home directory.")

    @field_validator("age_recipients")
    @classmethod
    def _age_keys(cls, value: list[str]) -> list[str]:
        for recipient in value:
            if not recipient.startswith("age1"):
                raise ValueError(f"{recipient!r} is not an age public key (they start with age1)")
        return value

    @model_validator(mode="after")
    def _one_method(self) -> EncryptionConfig:
        if self.age_recipients and self.gpg_recipients:
            raise ValueError("set either age_recipients or gpg_recipients, not both")
        if not self.age_recipients and not self.gpg_recipients:
            raise ValueError(
                "age_recipients or gpg_recipients is required: backups are always encrypted"
            )
        return self

    @property
    def method(self) -> Literal["age", "gpg"]:
        return "age" if self.age_recipients else "gpg"


class CompressionConfig(_Strict):
    level: Annotated[int, Field(ge=1, le=19)] = Field(
        default=1, description="zstd level; 1 keeps up with pg_dump on two cores."
    )
    threads: Annotated[int, Field(ge=0, le=64)] = Field(
        default=0, description="zstd worker threads; 0 uses every core."
    )


class ArchiveConfig(_Strict):
    """How wal-push and wal-fetch move WAL between the server and the repository."""

    async_push: bool = Field(
        default=False,
        alias="async",
        description="wal-push returns once the segment is fsynced in the spool; a background "
        "worker uploads the spool in parallel.",
    )
    spool_dir: Path | None = Field(
        default=None,
        description="Spool for async push and fetch prefetch (default: "
        "$XDG_STATE_HOME/lifeboat/spool, else ~/.local/state/lifeboat/spool).",
    )
    spool_max_segments: Annotated[int, Field(ge=1)] = Field(
        default=64,
        description="At most this many segments wait in the spool; beyond it wal-push "
        "uploads synchronously instead of dropping anything.",
    )
    workers: Annotated[int, Field(ge=1, le=32)] = Field(
        default=2, description="Parallel uploads of the async worker."
    )
    prefetch: Annotated[int, Field(ge=0, le=256)] = Field(
        default=4,
        description="Segments wal-fetch downloads ahead during recovery; 0 turns it off.",
    )


class ObjectivesConfig(_Strict):
    """What a restore must achieve: drills measure RTO and RPO and fail beyond these."""

    rto: str | None = Field(
        default=None,
        description='Recovery time objective, e.g. "4h": a drill whose measured recovery '
        "time exceeds it fails.",
    )
    rpo: str | None = Field(
        default=None,
        description='Recovery point objective, e.g. "1h": a drill whose measured data-loss '
        "window exceeds it fails.",
    )
    drill_every: str | None = Field(
        default=None,
        description='How often a drill must pass, e.g. "92d" (quarterly): status calls the '
        "source overdue once its newest passed drill is older.",
    )
    heartbeat: str | None = Field(
        default=None,
        description='How often `lifeboat heartbeat` writes to the source, e.g. "1m", so an '
        "idle database does not make a physical drill's RPO look old (see docs/drills.md).",
    )

    @field_validator("rto", "rpo", "drill_every", "heartbeat")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return checked_duration(value, "positive")


class DrillCheckConfig(_Strict):
    """One SQL check of a drill: a query returning one row with one boolean, true = pass."""

    name: str = Field(description="What the check proves, shown in the drill's record.")
    sql: str = Field(description="A query returning a single boolean; true means pass.")
    database: str | None = Field(
        default=None,
        description="Database to run it in (default: the backed-up database of a logical "
        "backup, the source DSN's database of a physical one).",
    )

    @field_validator("name", "sql")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class DrillConfig(_Strict):
    """How `lifeboat drill` proves this source's backups restore."""

    depth: Literal["quick", "standard", "full"] = Field(
        default="standard",
        description="quick: restore and compare with the backup's evidence; standard: also "
        "read every table once; full: also amcheck every B-tree index (where available).",
    )
    target_dsn: str | None = Field(
        default=None,
        description="Logical drills: a staging server to restore into (a throwaway database, "
        "dropped afterwards) instead of a scratch instance Lifeboat starts itself.",
    )
    target_password_file: Path | None = Field(
        default=None, description="File holding the password for target_dsn."
    )
    work_dir: Path | None = Field(
        default=None,
        description="Folder for the scratch instance and the fetched dump (default: the "
        "system's temporary folder).",
    )
    jobs: Annotated[int, Field(ge=1, le=64)] | None = Field(
        default=None, description="Parallel pg_restore jobs (default: the number of cores)."
    )
    checks: list[DrillCheckConfig] = Field(
        default_factory=list, description="SQL checks every drill runs on the restored data."
    )


class RunbookConfig(_Strict):
    """What `lifeboat runbook` cannot read from the repositories."""

    contacts: list[str] = Field(
        default_factory=list,
        description='Whom to notify in a disaster, one entry each, e.g. "On call: +44 20 '
        '7946 0000, dba@example.com"; the runbook lists them.',
    )


class _SourceBase(_Strict):
    """What every kind of source has: where its backups go, how long they are kept, what
    is promised about them, and how they are drilled."""

    repositories: list[str] | None = Field(
        default=None,
        description="Repositories of this source (default: every configured one). Backups "
        "(and a PostgreSQL source's WAL) go to each; restores try them in this order.",
    )
    retention: RetentionConfig | None = Field(
        default=None, description="Retention overrides for this source."
    )
    objectives: ObjectivesConfig = Field(
        default_factory=ObjectivesConfig, description="RTO, RPO and drill frequency."
    )
    drill: DrillConfig = Field(
        default_factory=DrillConfig, description="Restore drills of this source."
    )
    runbook: RunbookConfig = Field(
        default_factory=RunbookConfig, description="The disaster-recovery runbook's contacts."
    )


class PostgresSourceConfig(_SourceBase):
    type: Literal["postgres"] = "postgres"
    dsn: str = Field(description="libpq URL or key=value DSN of the database to back up.")
    password_file: Path | None = Field(
        default=None, description="File holding the password (else PGPASSWORD or ~/.pgpass)."
    )
    pg_bin_dir: Path | None = Field(
        default=None, description="Directory with pg_dump/pg_restore to use instead of searching."
    )
    globals_with_passwords: bool = Field(
        default=False,
        description="Logical backups keep the roles' password hashes with the roles "
        "(pg_dumpall reads them from pg_authid: the source's role must be a superuser or a "
        "member of pg_read_all_data). "
        "Off: roles are kept without passwords, readable by any role.",
    )
    archive: ArchiveConfig = Field(
        default_factory=ArchiveConfig, description="WAL archiving: async push, spool, prefetch."
    )
    manifest_checksums: Literal["CRC32C", "SHA224", "SHA256", "SHA384", "SHA512"] = Field(
        default="CRC32C",
        description="Per-file checksums in a physical backup's backup_manifest, computed by "
        "the server while it sends the files. CRC32C (PostgreSQL's default) detects "
        "corruption at almost no cost; a SHA algorithm costs the server about a second of "
        "CPU per GB, which lengthens the backup.",
    )


class RedisSourceConfig(_SourceBase):
    """A Redis server, snapshotted as an RDB file."""

    type: Literal["redis"]
    url: str = Field(
        description="redis://[:password@]host:port[/db] or rediss://... of the server "
        "(the snapshot holds every database; /db is where the connection starts)."
    )
    password_file: Path | None = Field(
        default=None, description="File holding the password (instead of one in the url)."
    )
    method: Literal["replication", "bgsave"] = Field(
        default="replication",
        description="replication: the server streams a fresh RDB snapshot over the "
        "replication protocol, as `redis-cli --rdb` does (no access to its files needed); "
        "bgsave: BGSAVE, then rdb_path is read once the save finished.",
    )
    rdb_path: Path | None = Field(
        default=None,
        description="bgsave: the server's RDB file (its `dir`/`dbfilename`), readable here.",
    )
    redis_bin_dir: Path | None = Field(
        default=None,
        description="Directory with redis-server and redis-check-rdb (for verify and drills) "
        "instead of searching PATH.",
    )

    @model_validator(mode="after")
    def _bgsave_needs_its_file(self) -> RedisSourceConfig:
        if self.method == "bgsave" and self.rdb_path is None:
            raise ValueError('method = "bgsave" needs rdb_path (the server\'s RDB file)')
        return self


class FilesSourceConfig(_SourceBase):
    """Files and directories, streamed as one tar (PAX) archive."""

    type: Literal["files"]
    paths: list[Path] = Field(
        description="Files and directories to back up (absolute), each whole with what is under it."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Patterns left out: `*.tmp` matches a name anywhere, `cache/` a directory "
        "anywhere, a pattern with a / inside matches from a backed-up path's top.",
    )
    one_file_system: bool = Field(
        default=False, description="Stay on each path's file system (mount points are left out)."
    )

    @field_validator("paths")
    @classmethod
    def _absolute_and_some(cls, value: list[Path]) -> list[Path]:
        if not value:
            raise ValueError("at least one path is required")
        for path in value:
            if not path.is_absolute():
                raise ValueError(f"{path}: paths must be absolute")
        return value


class SqliteSourceConfig(_SourceBase):
    """An SQLite database file, snapshotted while the application keeps writing."""

    type: Literal["sqlite"]
    path: Path = Field(description="The database file (absolute).")
    method: Literal["backup-api", "vacuum-into"] = Field(
        default="backup-api",
        description="backup-api: SQLite's online backup API; vacuum-into: VACUUM INTO a "
        "private temporary file (smaller, defragmented).",
    )
    busy_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds to wait for a database another connection keeps locked before "
        "the backup fails.",
    )

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"{value}: path must be absolute")
        return value


SOURCE_TYPES = ("postgres", "redis", "files", "sqlite")


def _source_type(value: object) -> str:
    """Which kind of source a [sources.NAME] table is: its `type`, postgres when it has none
    (as every source was before other kinds)."""
    if isinstance(value, dict):
        return str(value.get("type", "postgres"))
    return str(getattr(value, "type", "postgres"))


SourceConfig = Annotated[
    Annotated[PostgresSourceConfig, Tag("postgres")]
    | Annotated[RedisSourceConfig, Tag("redis")]
    | Annotated[FilesSourceConfig, Tag("files")]
    | Annotated[SqliteSourceConfig, Tag("sqlite")],
    Discriminator(
        _source_type,
        custom_error_type="source_type",
        custom_error_message="type must be one of " + ", ".join(SOURCE_TYPES),
    ),
]
AnySourceConfig = PostgresSourceConfig | RedisSourceConfig | FilesSourceConfig | SqliteSourceConfig


def archive_of(source: AnySourceConfig) -> ArchiveConfig:
    """A source's WAL archiving settings: only PostgreSQL archives WAL, the others have the
    defaults (and no spool ever fills)."""
    return source.archive if archives_wal(source) else ArchiveConfig()


def archives_wal(source: AnySourceConfig) -> TypeGuard[PostgresSourceConfig]:
    """Whether the source archives WAL (and so has a spool and WAL in its repositories):
    only PostgreSQL does. A bool, that also tells a type checker the source is PostgreSQL's."""
    return isinstance(source, PostgresSourceConfig)


# --- running itself: schedule, metrics, notifications --------------------------------------

JobKind = Literal["backup", "verify", "drill", "prune", "copy", "report"]
# what a notification channel can be told; `backup_overdue` and `rpo_breached` are found by
# the daemon and `status`, the others are a job's outcome
NotificationEvent = Literal[
    "backup_succeeded",
    "backup_failed",
    "drill_passed",
    "drill_failed",
    "verification_failed",
    "prune_applied",
    "rpo_breached",
    "backup_overdue",
    "job_failed",
]
NOTIFICATION_EVENTS: tuple[NotificationEvent, ...] = (
    "backup_succeeded",
    "backup_failed",
    "drill_passed",
    "drill_failed",
    "verification_failed",
    "prune_applied",
    "rpo_breached",
    "backup_overdue",
    "job_failed",
)


class ScheduleConfig(_Strict):
    """One scheduled job of `lifeboat daemon` (and of `lifeboat export`): when it runs and
    what it runs, the same library call as the command of the same name."""

    source: str | None = Field(
        default=None,
        description="The source the job works on; required for backup, drill and verify "
        "(prune and copy without it: every source; report: every source).",
    )
    group: str | None = Field(
        default=None,
        description="backup: a [groups] entry instead of source, its sources backed up as "
        "`lifeboat backup --group NAME` does.",
    )
    parallel: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1, description="backup of a group: how many of its sources at once."
    )
    job: JobKind = Field(description="backup | verify | drill | prune | copy | report.")
    type: Literal["logical", "physical"] | None = Field(
        default=None, description="backup: the kind of backup (default: the command's)."
    )
    cron: str | None = Field(
        default=None, description='A five-field cron expression, e.g. "0 * * * *".'
    )
    every: str | None = Field(
        default=None, description='An interval instead of cron, e.g. "6h" (from midnight).'
    )
    daily_at: str | None = Field(
        default=None, description='A time of day instead of cron, "HH:MM" (or "H:MM").'
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone the schedule is read in, e.g. Europe/Berlin (DST "
        "handled: a time skipped by the change runs once, a repeated time once).",
    )
    jitter: str | None = Field(
        default=None,
        description='Up to this long a random but fixed delay per job, e.g. "5m", so many '
        "hosts do not start at the same second.",
    )
    repository: str | None = Field(
        default=None,
        description="verify and prune: only this repository; copy: the repository copied from.",
    )
    to: str | None = Field(default=None, description="copy: the repository copied to.")
    deep: bool = Field(default=False, description="verify: decrypt and check every byte.")
    retries: Annotated[int, Field(ge=0, le=20)] = Field(
        default=2, description="A failed run is tried again this many times, with backoff."
    )
    retry_backoff: str = Field(
        default="1m", description="The wait before the first retry; it doubles each time."
    )
    timeout: str | None = Field(
        default=None, description="A run taking longer is cancelled cleanly and failed."
    )
    ping_url: str | None = Field(
        default=None,
        description="A dead-man's switch (healthchecks.io-compatible): pinged at the job's "
        "start (/start), success (the URL) and failure (/fail), so that a job that never "
        "runs is noticed outside.",
    )
    output: Path | None = Field(
        default=None,
        description="report: the folder each run writes the previous full quarter's "
        "report into, as HTML (default: reports/ in the daemon's state folder).",
    )

    @field_validator("every", "jitter", "retry_backoff", "timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return checked_duration(value, "not negative")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from croniter import croniter

            # five fields (or a macro): what cron, systemd timers and Kubernetes CronJobs
            # all read alike
            fields = CRON_MACROS.get(value.strip().lower(), value)
            if len(fields.split()) != 5 or not croniter.is_valid(fields):
                raise ValueError(f"not a five-field cron expression: {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _schedule_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            from lifeboat.policy.retention import parse_duration

            seconds = parse_duration(value).total_seconds()
            # counted from local midnight each day; longer: from midnight every N days
            if seconds <= 0 or (seconds > 86400 and seconds % 86400):
                raise ValueError(f"every must be above 0s, and whole days above 1d: {value!r}")
        return value

    @field_validator("daily_at")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"not a time of day as HH:MM: {value!r}")
        return value

    @property
    def time_of_day(self) -> tuple[int, int] | None:
        """daily_at as (hour, minute), validated above; None without daily_at."""
        if self.daily_at is None:
            return None
        hour, minute = self.daily_at.split(":")
        return int(hour), int(minute)

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleConfig:
        given = [name for name in ("cron", "every", "daily_at") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of cron, every and daily_at")
        if self.group is not None:
            if self.job != "backup":
                raise ValueError("group is for backup jobs")
            if self.source is not None:
                raise ValueError("give source or group, not both")
        elif self.job in ("backup", "drill", "verify") and self.source is None:
            raise ValueError(
                f"a {self.job} job needs a source"
                + (" (or a group)" if self.job == "backup" else "")
            )
        if self.job == "copy" and not (self.repository and self.to):
            raise ValueError("a copy job needs repository (from) and to")
        return self


def listen_address(text: str) -> tuple[str, int]:
    """host and port of "host:port", "[v6 address]:port" or ":port" (every address; port
    0: one the system picks); ValueError otherwise."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f'{text!r} is not host:port, e.g. "127.0.0.1:9847"')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:9847")
    return host, int(port)


class MetricsConfig(_Strict):
    """Prometheus metrics: served by the daemon, written as a textfile by one-shot runs."""

    listen: str | None = Field(
        default=None,
        description='host:port the daemon serves /metrics and /healthz on, e.g. "127.0.0.1:9847".',
    )
    textfile: Path | None = Field(
        default=None,
        description="A .prom file for node_exporter's textfile collector, rewritten "
        "atomically after every command that changes what the metrics say.",
    )
    refresh: str = Field(
        default="1m",
        description="The daemon reads the repositories for /metrics at most this often; "
        "scrapes in between are answered from memory (a large bucket is not listed every "
        "15 s).",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            listen_address(value)
        return value

    @field_validator("refresh")
    @classmethod
    def _duration(cls, value: str) -> str:
        return checked_duration(value)


class NotificationConfig(_Strict):
    """One notification channel."""

    type: Literal["webhook", "slack", "email", "apprise"] = Field(
        description="webhook (a JSON POST), slack (an incoming webhook), email (SMTP), "
        "apprise (any Apprise URL: Teams, Telegram, ntfy, PagerDuty...)."
    )
    url: str | None = Field(
        default=None,
        description="webhook, slack: the URL to POST to; apprise: the Apprise URL. Use "
        "${VAR} to keep a secret out of the file.",
    )
    events: list[NotificationEvent] = Field(
        default_factory=lambda: list(NOTIFICATION_EVENTS),
        description="The events sent through this channel (default: all).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="webhook: extra HTTP headers."
    )
    hmac_secret: SecretStr | None = Field(
        default=None,
        description="webhook: signs the body with HMAC-SHA256 in the X-Lifeboat-Signature "
        "header (sha256=<hex>).",
    )
    smtp_host: str | None = Field(default=None, description="email: the SMTP server.")
    smtp_port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="email: its port (default: 587, 465 with tls, 25 none)."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="email: STARTTLS, TLS from the start, or neither."
    )
    username: str | None = Field(default=None, description="email: the SMTP login.")
    password: SecretStr | None = Field(default=None, description="email: its password.")
    password_file: Path | None = Field(
        default=None, description="email: a file holding the password instead."
    )
    ca_file: Path | None = Field(
        default=None, description="CA certificates to trust (a private CA, a test's)."
    )
    sender: str | None = Field(default=None, description="email: the From address.")
    recipients: list[str] = Field(default_factory=list, description="email: To addresses.")
    timeout: str = Field(default="10s", description="Each delivery attempt's time limit.")
    retries: Annotated[int, Field(ge=0, le=10)] = Field(
        default=3, description="A failed delivery is tried again this many times."
    )

    @field_validator("timeout")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        return checked_duration(value, "positive")

    @model_validator(mode="after")
    def _what_the_type_needs(self) -> NotificationConfig:
        if self.type in ("webhook", "slack", "apprise") and not self.url:
            raise ValueError(f"a {self.type} channel needs url")
        if self.type == "email" and not (self.smtp_host and self.sender and self.recipients):
            raise ValueError("an email channel needs smtp_host, sender and recipients")
        return self


class LoggingConfig(_Strict):
    format: Literal["auto", "plain", "json"] = Field(
        default="auto", description="auto: progress on a terminal, plain lines otherwise."
    )
    level: Literal["debug", "info", "warning", "error"] = "info"


class LifeboatConfig(_Strict):
    repositories: dict[str, RepositoryConfig]
    encryption: EncryptionConfig
    compression: CompressionConfig = CompressionConfig()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    retention: RetentionConfig | None = Field(
        default=None, description="Retention of every source (see prune)."
    )
    logging: LoggingConfig = LoggingConfig()
    schedule: dict[str, ScheduleConfig] = Field(
        default_factory=dict, description="The daemon's jobs, by name."
    )
    metrics: MetricsConfig = MetricsConfig()
    notifications: dict[str, NotificationConfig] = Field(
        default_factory=dict, description="Notification channels, by name."
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Named lists of sources, backed up together by `backup --group NAME`.",
    )

    @field_validator("repositories")
    @classmethod
    def _at_least_one(cls, value: dict[str, RepositoryConfig]) -> dict[str, RepositoryConfig]:
        if not value:
            raise ValueError("at least one repository is required")
        return value

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in value:
            check_source_name(name)
        return value

    @model_validator(mode="after")
    def _known_repositories(self) -> LifeboatConfig:
        for name, source in self.sources.items():
            for repo in source.repositories or []:
                if repo not in self.repositories:
                    raise ValueError(
                        f"sources.{name}.repositories names unknown repository {repo!r}"
                    )
        return self

    @model_validator(mode="after")
    def _groups_of_sources(self) -> LifeboatConfig:
        for name, members in self.groups.items():
            if name in self.sources:
                raise ValueError(f"groups.{name}: a source has that name already")
            if not members:
                raise ValueError(f"groups.{name}: a group needs at least one source")
            for member in members:
                if member not in self.sources:
                    raise ValueError(f"groups.{name} names unknown source {member!r}")
            if len(set(members)) != len(members):
                raise ValueError(f"groups.{name} names a source twice")
        return self

    @model_validator(mode="after")
    def _scheduled_jobs_name_what_exists(self) -> LifeboatConfig:
        for name, job in self.schedule.items():
            if job.source is not None and job.source not in self.sources:
                raise ValueError(f"schedule.{name}.source names unknown source {job.source!r}")
            if job.group is not None and job.group not in self.groups:
                raise ValueError(f"schedule.{name}.group names unknown group {job.group!r}")
            if job.type is not None:
                for member in self.job_sources(job):
                    kind = self.sources[member].type
                    if kind != "postgres":
                        raise ValueError(
                            f"schedule.{name}.type: source {member!r} is a {kind} source, "
                            "type (logical, physical) is for PostgreSQL sources"
                        )
            for repo in (job.repository, job.to):
                if repo is not None and repo not in self.repositories:
                    raise ValueError(f"schedule.{name} names unknown repository {repo!r}")
        return self

    def job_sources(self, job: ScheduleConfig) -> list[str]:
        """The sources a scheduled job names: its source, or its group's members."""
        if job.group is not None:
            return list(self.groups.get(job.group, []))
        return [job.source] if job.source is not None else []

    @model_validator(mode="after")
    def _settings_the_storage_honours(self) -> LifeboatConfig:
        # here rather than in RepositoryConfig: the message names the repository
        for name, repo in self.repositories.items():
            refused = repo.unsupported_settings()
            if refused:
                shown = shown_url(repo.url)
                raise ValueError(f"repository {name!r} ({shown}): " + "; ".join(refused))
        return self


def secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value is not None else None
