"""The single declaration of every configuration option: type, default and help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from lifeboat.repo.layout import check_source_name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _expand_home(cls, value: object) -> object:
        return value.expanduser() if isinstance(value, Path) else value


class RepositoryConfig(_Strict):
    url: str = Field(description="Where backups live: file:///path or a plain path.")

    @field_validator("url")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


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


class PostgresSourceConfig(_Strict):
    type: Literal["postgres"] = "postgres"
    dsn: str = Field(description="libpq URL or key=value DSN of the database to back up.")
    password_file: Path | None = Field(
        default=None, description="File holding the password (else PGPASSWORD or ~/.pgpass)."
    )
    pg_bin_dir: Path | None = Field(
        default=None, description="Directory with pg_dump/pg_restore to use instead of searching."
    )
    repositories: list[str] | None = Field(
        default=None,
        description="Repositories of this source; backups go to the first (default: the "
        "first configured).",
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


SourceConfig = PostgresSourceConfig


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
    logging: LoggingConfig = LoggingConfig()

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


def secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value is not None else None
