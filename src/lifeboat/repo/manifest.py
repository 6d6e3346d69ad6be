"""The per-backup manifest: what was stored and the evidence a restore is checked against."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lifeboat.errors import IntegrityError

MANIFEST_FORMAT = 1
GLOBALS_FORMAT = "pg_dumpall-globals"  # the format of a logical backup's roles object
BackupType = Literal["logical", "physical"]
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


class TableFacts(_Model):
    """What a restore of single tables needs to know about one table (names of tables and
    sequences as format('%I.%I') writes them, column and constraint names as they are)."""

    partitioned: bool = False
    partition_of: str | None = Field(default=None, description="the parent of a partition")
    columns: list[str] = Field(default_factory=list, description="stored columns, in order")
    sequences: list[str] = Field(
        default_factory=list, description="sequences it owns (serial and identity columns)"
    )
    references: dict[str, str] = Field(
        default_factory=dict, description="its foreign keys: constraint -> referenced table"
    )
    inherited: list[str] = Field(
        default_factory=list, description="constraints a partition has from its parent"
    )


class Evidence(_Model):
    """Facts read in the same snapshot as the dump, checked again after a restore."""

    row_counts: dict[str, int]
    indexes: list[str]
    constraints: list[str]
    # empty in manifests written before table restores needed it
    tables: dict[str, TableFacts] = Field(default_factory=dict)


class DatabaseGrant(_Model):
    """One privilege of the database's ACL, as aclexplode() gives it."""

    grantee: str | None = Field(description="role name; null for PUBLIC")
    privilege: str = Field(description="CONNECT, CREATE or TEMPORARY")
    grantable: bool = False


class DatabaseSetting(_Model):
    """`ALTER DATABASE ... SET` (role null) or `ALTER ROLE ... IN DATABASE ... SET`."""

    role: str | None = None
    settings: list[str] = Field(description="name=value, as pg_db_role_setting holds them")


class DatabaseProperties(_Model):
    """What belongs to the dumped database itself rather than to an object in it, and the
    roles its objects name. Read in the dump's snapshot; a restore creates its database
    with them."""

    owner: str
    encoding: str
    collate: str
    ctype: str
    locale_provider: Literal["libc", "icu", "builtin"] = "libc"
    locale: str | None = Field(default=None, description="ICU or builtin locale")
    icu_rules: str | None = None
    connection_limit: int = -1
    comment: str | None = None
    acl: list[DatabaseGrant] | None = Field(
        default=None, description="null: the default privileges (never granted or revoked)"
    )
    settings: list[DatabaseSetting] = Field(default_factory=list)
    owners: list[str] = Field(
        default_factory=list, description="roles owning the database or objects in it"
    )
    grantees: list[str] = Field(
        default_factory=list, description="roles granted privileges on it or objects in it"
    )
    policy_roles: list[str] = Field(
        default_factory=list, description="roles named by row security policies"
    )


class Server(_Model):
    version: str
    version_num: int
    system_identifier: str | None = None


class TablespaceEntry(_Model):
    """An extra tablespace of a physical backup and the object holding its files."""

    oid: int
    name: str
    location: str = Field(description="its folder on the backed-up server")
    object: str = Field(description="name of the stored object with its tar")


class Physical(_Model):
    """Where a base backup sits in the WAL: what recovery needs to reach consistency."""

    timeline: int
    start_lsn: str
    stop_lsn: str
    start_wal: str = Field(description="first WAL segment the backup needs")
    stop_wal: str = Field(description="last WAL segment needed for consistency")
    segment_size: int
    data_checksums: bool = False
    parent: str | None = Field(
        default=None, description="id of the backup an incremental backup builds on"
    )
    tablespaces: list[TablespaceEntry] = Field(default_factory=list)

    @property
    def incremental(self) -> bool:
        return self.parent is not None


class Manifest(_Model):
    format: int = MANIFEST_FORMAT
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
    database_properties: DatabaseProperties | None = Field(
        default=None,
        description="logical: the database's own properties (absent in older backups)",
    )
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def checks(self) -> Evidence:
        """The evidence of a logical backup (row counts, indexes, constraints)."""
        if self.evidence is None:
            raise IntegrityError(f"backup {self.source}/{self.id} ({self.type}) has no row counts")
        return self.evidence

    @property
    def globals_object(self) -> StoredObject | None:
        """A logical backup's roles and memberships (pg_dumpall --globals-only), if taken."""
        return next((o for o in self.objects if o.format == GLOBALS_FORMAT), None)

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
            "type": self.type,
            "database": self.database,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_s": round((self.finished_at - self.started_at).total_seconds(), 3),
            "server_version": self.server.version,
            "plain_size": self.plain_size,
            "stored_size": self.stored_size,
            "encryption": self.encryption.method,
            "tables": len(self.evidence.row_counts) if self.evidence else None,
            "rows": sum(self.evidence.row_counts.values()) if self.evidence else None,
            "labels": self.labels,
            "safety": self.safety,
            "parent": self.physical.parent if self.physical else None,
        }


def digest(manifest: Manifest) -> str:
    """The checksum encode embeds: equal for two manifests only if they describe the same
    backup, where their ids may be the same for two different ones."""
    return _digest(manifest.model_dump(mode="json"))


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode(manifest: Manifest) -> bytes:
    body = manifest.model_dump(mode="json")
    document = {**body, "checksum": _digest(body)}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def decode(data: bytes, where: str) -> Manifest:
    try:
        document = json.loads(data)
        if not isinstance(document, dict):
            raise TypeError
        checksum = document.pop("checksum")
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"manifest {where} is not valid JSON with a checksum") from None
    if isinstance(document.get("format"), int) and document["format"] > MANIFEST_FORMAT:
        raise IntegrityError(
            f"manifest {where} has format {document['format']}: upgrade Lifeboat to read it"
        )
    if _digest(document) != checksum:
        raise IntegrityError(f"manifest {where} does not match its embedded checksum")
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        raise IntegrityError(f"manifest {where} is incomplete: {exc.errors()[0]['msg']}") from None
