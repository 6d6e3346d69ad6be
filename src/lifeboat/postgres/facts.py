"""What Lifeboat records about a PostgreSQL server and what it backed up: the facts a
backup's manifest carries and a restore is checked against. Read by postgres/ when it dumps
or copies a cluster; repo/manifest.py holds them in a backup's PostgreSQL details."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


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
    # pg_table_size of each table (heap and TOAST) when it was dumped; empty in manifests
    # written before a restore chose how to load by them
    table_bytes: dict[str, int] = Field(default_factory=dict)
    # how many large objects the database held; None in manifests written before
    large_objects: int | None = None

    @model_serializer(mode="wrap")
    def _without_unknown_sizes(self, write: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A manifest written before the sizes were recorded is written again as it was:
        its checksum, and a copy's, stay the same."""
        written: dict[str, Any] = write(self)
        if not self.table_bytes:
            written.pop("table_bytes", None)
        if self.large_objects is None:
            written.pop("large_objects", None)
        return written


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
