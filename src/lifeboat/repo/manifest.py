"""The per-backup manifest: what was stored and the evidence a restore is checked against.

Format 2 (written since) has what every backup has at the top, whatever its source (id,
source, kind, times, objects, compression, encryption, labels), and what only its kind has
under `details`, validated by that kind's model. Format 1 (PostgreSQL only: `type` logical or
physical, the server and the PostgreSQL facts at the top) is still read: it becomes the same
Manifest, remembers its format, and is written back as it was (a copy between repositories
keeps its bytes and its checksum)."""

from __future__ import annotations

import builtins
import hashlib
import json
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lifeboat.errors import IntegrityError
from lifeboat.postgres.facts import (
    DatabaseGrant,
    DatabaseProperties,
    DatabaseSetting,
    Evidence,
    Physical,
    Server,
    TableFacts,
    TablespaceEntry,
)

__all__ = [  # the PostgreSQL facts are read from here too, as they were before postgres/facts.py
    "DatabaseGrant",
    "DatabaseProperties",
    "DatabaseSetting",
    "Evidence",
    "Physical",
    "Server",
    "TableFacts",
    "TablespaceEntry",
]

MANIFEST_FORMAT = 2  # what new backups write
GLOBALS_FORMAT = "pg_dumpall-globals"  # the format of a logical backup's roles object
BackupType = Literal[
    "logical", "physical"
]  # the PostgreSQL kinds, as format 1 and the CLI name them
Kind = Literal["postgres-logical", "postgres-physical", "redis", "files", "sqlite"]
SAFETY_LABEL = "safety"  # labels.kind of the backup a restore takes of the database it replaces


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StoredObject(_Model):
    name: str
    size: int = Field(description="stored (compressed, encrypted) size in bytes")
    sha256: str = Field(description="sha256 of the stored bytes")
    plain_size: int
    plain_sha256: str = Field(description="sha256 of the data before compression")
    format: str = Field(description="what the plaintext is, e.g. pg_dump-custom")


class Compression(_Model):
    algorithm: Literal["zstd"] = "zstd"
    level: int


class Encryption(_Model):
    method: Literal["age", "gpg"]
    recipients: list[dict[str, str]] = Field(description="[{type, id}] of who can decrypt")


class PostgresLogicalDetails(_Model):
    """The details of a pg_dump of one database."""

    KIND: ClassVar[Kind] = "postgres-logical"
    server: Server
    database: str = Field(description="the dumped database")
    evidence: Evidence | None = Field(
        default=None, description="facts read in the dump's snapshot, checked after a restore"
    )
    database_properties: DatabaseProperties | None = Field(
        default=None, description="the database's own properties (absent in older backups)"
    )
    globals: str | None = Field(
        default=None, description="name of the object with the cluster's roles, if taken"
    )


class PostgresPhysicalDetails(Physical):
    """The details of a base backup of a whole cluster: where it sits in the WAL."""

    KIND: ClassVar[Kind] = "postgres-physical"
    server: Server


class RedisDetails(_Model):
    """The details of a Redis snapshot: one RDB file, every database of the server."""

    KIND: ClassVar[Kind] = "redis"
    redis_version: str = Field(description="the server's redis_version")
    method: Literal["replication", "bgsave"] = Field(description="how the snapshot was taken")
    keys: dict[str, int] = Field(
        description="keys per database in the snapshot (db0, db1...), checked after a restore"
    )
    expires: dict[str, int] = Field(
        default_factory=dict, description="keys with a time to live, per database"
    )


class FilesDetails(_Model):
    """The details of files and directories stored as one tar (PAX) archive, with a per-file
    sha256 index stored as its own object."""

    KIND: ClassVar[Kind] = "files"
    paths: list[str] = Field(description="the configured paths, as the archive names them")
    files: int = Field(description="regular files in the archive (hard links included)")
    directories: int
    symlinks: int
    total_bytes: int = Field(description="the regular files' bytes")
    index: str = Field(description="name of the object holding the per-file sha256 index")
    changed: list[str] = Field(
        default_factory=list,
        description="files that changed or vanished while they were read (kept as read, or "
        "left out), named in the archive's terms",
    )
    parent: str | None = Field(
        default=None,
        description="the backup this one only adds changes to (none: the archive is whole); "
        "room for incremental file backups",
    )
    skipped: dict[str, str] = Field(
        default_factory=dict,
        description="what was found but is not in the archive, and why: sockets, FIFOs and "
        "devices, files or folders that could not be read",
    )


class SqliteDetails(_Model):
    """The details of a consistent snapshot of one SQLite database file."""

    KIND: ClassVar[Kind] = "sqlite"
    path: str = Field(description="the database file that was backed up")
    sqlite_version: str
    method: Literal["backup-api", "vacuum-into"] = Field(description="how the snapshot was taken")
    journal_mode: str = Field(description="the source's journal mode (wal, delete...)")
    row_counts: dict[str, int] = Field(description="rows per table in the snapshot")
    schema_sha256: str = Field(description="sha256 of the snapshot's sqlite_schema SQL")


Details = (
    PostgresLogicalDetails | PostgresPhysicalDetails | RedisDetails | FilesDetails | SqliteDetails
)
DETAILS: dict[str, type[Details]] = {
    model.KIND: model
    for model in (
        PostgresLogicalDetails,
        PostgresPhysicalDetails,
        RedisDetails,
        FilesDetails,
        SqliteDetails,
    )
}
DetailsT = TypeVar("DetailsT", bound=Details)
POSTGRES_KINDS: tuple[Kind, ...] = ("postgres-logical", "postgres-physical")
KIND_OF_TYPE: dict[BackupType, Kind] = {
    "logical": "postgres-logical",
    "physical": "postgres-physical",
}


def kind_name(kind: str) -> str:
    """A kind as people read it: PostgreSQL's two by their type, as the command line names
    them (logical, physical); any other by its kind."""
    return next((name for name, known in KIND_OF_TYPE.items() if known == kind), kind)


class _FormatOne(_Model):
    """A manifest as format 1 wrote it: PostgreSQL's backups only, its facts at the top."""

    format: int = 1
    id: str
    source: str
    type: BackupType
    started_at: datetime
    finished_at: datetime
    database: str = Field(description="the dumped database; '' for a physical backup")
    server: Server
    tool: dict[str, str] = Field(description="versions of lifeboat and pg_dump")
    compression: Compression
    encryption: Encryption
    objects: list[StoredObject]
    evidence: Evidence | None = None
    physical: Physical | None = None
    database_properties: DatabaseProperties | None = None
    labels: dict[str, str] = Field(default_factory=dict)


def _from_format_one(old: _FormatOne) -> dict[str, Any]:
    """The fields of a Manifest for a format-1 manifest (which keeps saying format 1)."""
    details: Details
    if old.type == "logical":
        roles = next((o.name for o in old.objects if o.format == GLOBALS_FORMAT), None)
        details = PostgresLogicalDetails(
            server=old.server,
            database=old.database,
            evidence=old.evidence,
            database_properties=old.database_properties,
            globals=roles,
        )
    else:
        if old.physical is None:
            raise ValueError("a physical backup's manifest needs its physical section")
        details = PostgresPhysicalDetails(server=old.server, **dict(old.physical))
    return {
        "format": old.format,
        "id": old.id,
        "source": old.source,
        "kind": KIND_OF_TYPE[old.type],
        "started_at": old.started_at,
        "finished_at": old.finished_at,
        "tool": old.tool,
        "compression": old.compression,
        "encryption": old.encryption,
        "objects": old.objects,
        "labels": old.labels,
        "details": details,
    }


class Manifest(_Model):
    format: int = MANIFEST_FORMAT
    id: str
    source: str
    kind: Kind = Field(description="what was backed up and how; names the model of `details`")
    started_at: datetime
    finished_at: datetime
    tool: dict[str, str] = Field(description="versions of lifeboat and the source's tools")
    compression: Compression
    encryption: Encryption
    objects: list[StoredObject]
    labels: dict[str, str] = Field(default_factory=dict)
    details: Details

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        """A format-1 document (it has `type`, no `kind`) becomes this shape; the details
        are validated by the model of the manifest's kind."""
        if not isinstance(data, dict):
            return data
        if "kind" not in data and "type" in data:
            data = _from_format_one(_FormatOne.model_validate(data))
        details = data.get("details")
        if isinstance(details, dict):
            model = DETAILS.get(str(data.get("kind")))
            if model is None:
                raise ValueError(f"unknown kind {data.get('kind')!r}")
            data = {**data, "details": model.model_validate(details)}
        return data

    @model_validator(mode="after")
    def _details_of_its_kind(self) -> Manifest:
        if self.kind != self.details.KIND:
            raise ValueError(f"details of {self.details.KIND} in a {self.kind} manifest")
        return self

    # --- PostgreSQL's accessors, as format 1 had them at the top --------------------------

    @property
    def type(self) -> str:
        """The kind as people and the command line name it: logical and physical for
        PostgreSQL's two, the kind itself for the others (redis, files, sqlite)."""
        return kind_name(self.kind)

    @property
    def postgres(self) -> bool:
        return self.kind in POSTGRES_KINDS

    @property
    def logical(self) -> PostgresLogicalDetails | None:
        return self.details if isinstance(self.details, PostgresLogicalDetails) else None

    @property
    def physical(self) -> PostgresPhysicalDetails | None:
        return self.details if isinstance(self.details, PostgresPhysicalDetails) else None

    @property
    def server(self) -> Server:
        """The PostgreSQL server a backup of PostgreSQL was taken from."""
        details = self.details
        if not isinstance(details, PostgresLogicalDetails | PostgresPhysicalDetails):
            raise IntegrityError(f"backup {self.source}/{self.id} is a {self.kind} backup")
        return details.server

    @property
    def version(self) -> str:
        """The version of what was backed up (PostgreSQL's, Redis's, SQLite's); '' for files."""
        details = self.details
        if isinstance(details, PostgresLogicalDetails | PostgresPhysicalDetails):
            return details.server.version
        if isinstance(details, RedisDetails):
            return details.redis_version
        if isinstance(details, SqliteDetails):
            return details.sqlite_version
        return ""

    @property
    def database(self) -> str:
        """The dumped database; '' for a physical backup."""
        return self.logical.database if self.logical else ""

    @property
    def evidence(self) -> Evidence | None:
        return self.logical.evidence if self.logical else None

    @property
    def database_properties(self) -> DatabaseProperties | None:
        return self.logical.database_properties if self.logical else None

    @property
    def checks(self) -> Evidence:
        """The evidence of a logical backup (row counts, indexes, constraints)."""
        if self.evidence is None:
            raise IntegrityError(f"backup {self.source}/{self.id} ({self.type}) has no row counts")
        return self.evidence

    @property
    def globals_object(self) -> StoredObject | None:
        """A logical backup's roles and memberships (pg_dumpall --globals-only), if taken."""
        name = self.logical.globals if self.logical else None
        return next((o for o in self.objects if o.name == name), None)

    # --- every kind -----------------------------------------------------------------------

    def details_as(self, model: builtins.type[DetailsT]) -> DetailsT:
        """The details, as a kind's own code reads them: of its model, else the backup is
        another kind's and that code was given the wrong one."""
        details = self.details
        if not isinstance(details, model):
            raise IntegrityError(f"backup {self.source}/{self.id} is a {self.kind} backup")
        return details

    @property
    def safety(self) -> bool:
        """A restore's safety backup of the database it replaced (see logical_restore.py)."""
        return self.labels.get("kind") == SAFETY_LABEL

    @property
    def plain_size(self) -> int:
        return sum(o.plain_size for o in self.objects)

    @property
    def stored_size(self) -> int:
        return sum(o.size for o in self.objects)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "type": self.type,
            "database": self.database,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_s": round((self.finished_at - self.started_at).total_seconds(), 3),
            "server_version": self.version,
            "plain_size": self.plain_size,
            "stored_size": self.stored_size,
            "encryption": self.encryption.method,
            "tables": len(self.evidence.row_counts) if self.evidence else None,
            "rows": sum(self.evidence.row_counts.values()) if self.evidence else None,
            "labels": self.labels,
            "safety": self.safety,
            "parent": self.physical.parent if self.physical else None,
        }


def _format_one_body(manifest: Manifest) -> dict[str, Any]:
    physical = manifest.physical
    old = _FormatOne(
        format=manifest.format,
        id=manifest.id,
        source=manifest.source,
        type="logical" if manifest.logical else "physical",
        started_at=manifest.started_at,
        finished_at=manifest.finished_at,
        database=manifest.database,
        server=manifest.server,
        tool=manifest.tool,
        compression=manifest.compression,
        encryption=manifest.encryption,
        objects=manifest.objects,
        evidence=manifest.evidence,
        physical=Physical(**physical.model_dump(exclude={"server"})) if physical else None,
        database_properties=manifest.database_properties,
        labels=manifest.labels,
    )
    return old.model_dump(mode="json")


def document(manifest: Manifest) -> dict[str, Any]:
    """The manifest as its format writes it (without the checksum): a format-1 manifest
    keeps its format-1 shape."""
    if manifest.format == 1:
        return _format_one_body(manifest)
    return manifest.model_dump(mode="json")


def digest(manifest: Manifest) -> str:
    """The checksum encode embeds: equal for two manifests only if they describe the same
    backup, where their ids may be the same for two different ones."""
    return _digest(document(manifest))


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode(manifest: Manifest) -> bytes:
    body = document(manifest)
    return (
        json.dumps(
            {**body, "checksum": _digest(body)}, indent=2, sort_keys=True, ensure_ascii=False
        ).encode()
        + b"\n"
    )


def decode(data: bytes, where: str) -> Manifest:
    try:
        body = json.loads(data)
        if not isinstance(body, dict):
            raise TypeError
        checksum = body.pop("checksum")
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"manifest {where} is not valid JSON with a checksum") from None
    if isinstance(body.get("format"), int) and body["format"] > MANIFEST_FORMAT:
        raise IntegrityError(
            f"manifest {where} has format {body['format']}: upgrade Lifeboat to read it"
        )
    if _digest(body) != checksum:
        raise IntegrityError(f"manifest {where} does not match its embedded checksum")
    if "kind" in body and body["kind"] not in DETAILS:
        raise IntegrityError(
            f"manifest {where} is of kind {body['kind']!r}, which this Lifeboat does not "
            "know: upgrade Lifeboat to read it"
        )
    try:
        return Manifest.model_validate(body)
    except ValidationError as exc:
        raise IntegrityError(f"manifest {where} is incomplete: {exc.errors()[0]['msg']}") from None
