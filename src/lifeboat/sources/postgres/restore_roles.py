"""Which roles a logical restore needs that the target server lacks, found before anything
is changed, and their creation from the backup's globals when asked."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from lifeboat.errors import RestoreError
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.postgres import roles
from lifeboat.postgres.dbprops import Ownership
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import DatabaseProperties, Manifest
from lifeboat.repo.objects import read_plain

log = logging.getLogger(__name__)


@dataclass
class RolePlan:
    """The roles to create before the restore, from which script, and the roles whose
    database settings are left out (absent, and not needed without owners and privileges)."""

    create: list[str] = field(default_factory=list)
    globals: roles.Globals | None = None
    skip_settings_of: set[str] = field(default_factory=set)


def needed_roles(props: DatabaseProperties, ownership: Ownership) -> set[str]:
    """The roles the restored objects name: owners unless --no-owner, grantees unless
    --no-privileges; policies name theirs either way (pg_restore creates them)."""
    needed = set(props.policy_roles)
    if ownership.owners:
        needed |= set(props.owners)
    if ownership.privileges:
        needed |= set(props.grantees)
    if ownership.owners or ownership.privileges:
        needed |= {s.role for s in props.settings if s.role is not None}
    return needed


def read_globals(repo: Repository, manifest: Manifest, decryptor: Decryptor) -> str:
    obj = manifest.globals_object
    if obj is None:
        raise RestoreError(
            f"backup {manifest.id} holds no roles (taken before Lifeboat kept them): create "
            "the roles first, or restore with --no-owner --no-privileges"
        )
    sink = io.BytesIO()
    read_plain(repo, manifest, obj, decryptor, sink)
    return sink.getvalue().decode()


def plan_roles(
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    admin: psycopg.Connection[Any],
    ownership: Ownership,
    create: bool,
    target: str,
) -> RolePlan:
    """Check the target's roles against the backup's; read-only. Refuses (one line naming
    the missing roles) unless they are to be created."""
    props = manifest.database_properties
    if props is None:
        return RolePlan()  # an older backup: pg_restore itself names a missing role
    needed = needed_roles(props, ownership)
    missing = sorted(needed - roles.existing_roles(admin, needed))
    setting_roles = {s.role for s in props.settings if s.role is not None}
    skip = setting_roles - roles.existing_roles(admin, setting_roles) - set(missing)
    if skip:
        log.warning(
            "database settings of roles %s left out: they do not exist on %s",
            shown(sorted(skip)),
            target,
        )
    if not missing:
        return RolePlan(skip_settings_of=skip)
    # pg_restore creates row security policies with --no-owner --no-privileges too: those
    # cannot do without a role a policy names, so they are not offered then
    named_by_policies = [name for name in missing if name in props.policy_roles]
    policies = (
        f"create them first (row security policies name {shown(named_by_policies)}, "
        "which --no-owner --no-privileges do not leave out)"
    )
    if not create:
        raise RestoreError(
            f"roles missing on {target}: {shown(missing)}; pass --create-roles to create "
            "them from the backup, or "
            + (
                policies
                if named_by_policies
                else "--no-owner --no-privileges to restore without them"
            )
        )
    parsed = roles.parse_globals(read_globals(repo, manifest, decryptor))
    absent = [name for name in missing if name not in parsed.roles]
    if absent:
        raise RestoreError(
            f"roles missing on {target} and not in the backup's globals: {shown(absent)}; "
            + (
                policies
                if named_by_policies
                else "create them first, or restore with --no-owner --no-privileges"
            )
        )
    return RolePlan(create=missing, globals=parsed, skip_settings_of=skip)


def shown(names: list[str]) -> str:
    """Role names for a message, as SQL would write them: quoted when they need it, with
    control characters escaped, so a name cannot split the one error line or pass for two."""
    return ", ".join(_ident(name) for name in names)


def _ident(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    quoted = '"' + name.replace('"', '""') + '"'
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in quoted)
