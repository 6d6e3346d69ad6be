"""`lifeboat runbook SOURCE`: the facts of a disaster-recovery runbook, read from the
configuration and from what the repositories hold (newest backups, drill records).

Only the model is built here; runbook_markdown.py renders it, so the facts can be tested
apart from their wording."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import lifeboat
from lifeboat.config.model import archives_wal
from lifeboat.context import Context
from lifeboat.errors import LifeboatError
from lifeboat.ops.drill_records import drills_history
from lifeboat.ops.status import newest_wal
from lifeboat.repo import layout
from lifeboat.repo.manifest import Manifest
from lifeboat.storage.azure import ACCOUNT_ENV, CONNECTION_STRING_ENV, KEY_ENV, SAS_TOKEN_ENV
from lifeboat.storage.options import shown_url, url_scheme

log = logging.getLogger(__name__)

# where each backend takes its credentials from: names only, never values
CREDENTIALS_OF_SCHEME: dict[str, list[str]] = {
    "s3": [
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE and ~/.aws/credentials, "
        "or the instance role)"
    ],
    "az": [f"{CONNECTION_STRING_ENV}, or {ACCOUNT_ENV} with {KEY_ENV} or {SAS_TOKEN_ENV}"],
    "gs": ["GOOGLE_APPLICATION_CREDENTIALS (a service account key file), or the VM's account"],
}


@dataclass(frozen=True)
class RepositoryFacts:
    name: str
    url: str  # shown_url: no secret of a query string
    credentials: list[str]  # where they come from; empty: the local file system's permissions
    error: str | None = None  # why it could not be read now


@dataclass(frozen=True)
class BackupFacts:
    id: str
    kind: str  # logical or physical; the kind of another source (redis, files, sqlite)
    finished_at: datetime
    database: str  # '' for a physical backup
    repositories: list[str]  # every one that holds it, the first restore tries first
    object_keys: list[str]  # in the first repository holding it
    row_counts: dict[str, int]  # the evidence's, to compare after a restore


@dataclass(frozen=True)
class DrillFacts:
    drill_id: str
    kind: str
    backup: str
    started_at: datetime
    rto_seconds: float | None


@dataclass(frozen=True)
class Runbook:
    source: str
    generated_at: datetime
    lifeboat_version: str
    config_path: Path
    repositories: list[RepositoryFacts]
    newest: dict[str, BackupFacts]  # kind -> the newest backup of that kind
    archives_wal: bool
    encryption_method: str  # age or gpg
    key_setting: str  # the config key naming the secret key, with its value (a path)
    rto_objective: str | None
    drills: dict[str, DrillFacts] = field(default_factory=dict)  # kind -> newest passed
    contacts: list[str] = field(default_factory=list)  # [sources.NAME.runbook] contacts
    drills_error: str | None = None  # why some (or all) drill records could not be read
    source_type: str = "postgres"  # the configured source's: redis, files, sqlite...

    @property
    def unreadable(self) -> list[RepositoryFacts]:
        return [repo for repo in self.repositories if repo.error]


def _credentials(url: str) -> list[str]:
    return CREDENTIALS_OF_SCHEME.get(url_scheme(url), [])


def _key_setting(ctx: Context) -> tuple[str, str]:
    encryption = ctx.config.encryption
    if encryption.method == "age":
        identity = encryption.age_identity_file
        shown = str(identity) if identity else "(not set: pass the age identity file)"
        return "age", f"encryption.age_identity_file = {shown}"
    home = encryption.gpg_homedir
    return "gpg", (
        f"the secret key of {', '.join(encryption.gpg_recipients)} in the GPG home "
        f"{home if home else '~/.gnupg'}"
    )


def _backup_facts(manifest: Manifest, holders: list[str]) -> BackupFacts:
    evidence = manifest.evidence
    return BackupFacts(
        id=manifest.id,
        kind=manifest.type,
        finished_at=manifest.finished_at,
        database=manifest.database,
        repositories=holders,
        object_keys=[
            layout.object_key(manifest.source, manifest.id, o.name) for o in manifest.objects
        ],
        row_counts=dict(evidence.row_counts) if evidence is not None else {},
    )


def build(ctx: Context, source: str, now: datetime | None = None) -> Runbook:
    """The runbook's facts for source; an unknown source is a usage error. A repository
    that cannot be read is named with why, the others still give their backups."""
    has_wal = archives_wal(ctx.source(source))
    now = now or datetime.now(UTC)
    repositories: list[RepositoryFacts] = []
    manifests: dict[str, Manifest] = {}  # id -> manifest, from the first repository holding it
    holders: dict[str, list[str]] = {}
    wal_found = False
    for repo in ctx.repositories_for(source):
        error = None
        try:
            repo.ensure_initialised()
            found, _damaged = repo.scan_backups(source)
            for manifest in found:
                if manifest.safety:
                    continue
                manifests.setdefault(manifest.id, manifest)
                holders.setdefault(manifest.id, []).append(repo.name)
            wal_found = wal_found or (has_wal and newest_wal(repo, source, now) is not None)
        except LifeboatError as exc:
            # the command ends naming it; drill_records warns of it once already
            log.debug("repository %s cannot be read: %s", repo.name, exc.message)
            error = exc.message
        repositories.append(
            RepositoryFacts(
                repo.name, shown_url(repo.storage.url), _credentials(repo.storage.url), error
            )
        )
    newest: dict[str, BackupFacts] = {}
    for manifest in sorted(manifests.values(), key=lambda m: m.finished_at):
        newest[manifest.type] = _backup_facts(manifest, holders[manifest.id])
    drills, drills_error = _newest_passed_drills(ctx, source, now)
    method, key_setting = _key_setting(ctx)
    return Runbook(
        source=source,
        generated_at=now,
        lifeboat_version=lifeboat.__version__,
        config_path=ctx.config_path.resolve(),
        repositories=repositories,
        newest=dict(sorted(newest.items())),
        archives_wal=wal_found,
        encryption_method=method,
        key_setting=key_setting,
        rto_objective=ctx.config.sources[source].objectives.rto,
        drills=drills,
        contacts=list(ctx.config.sources[source].runbook.contacts),
        drills_error=drills_error,
        source_type=ctx.config.sources[source].type,
    )


def _newest_passed_drills(
    ctx: Context, source: str, now: datetime
) -> tuple[dict[str, DrillFacts], str | None]:
    """kind -> the newest passed drill of that kind; and why records could not be read
    from some repository (or any), as a runbook is still worth having then."""
    try:
        history = drills_history(ctx, source, now)
    except LifeboatError as exc:
        return {}, exc.message
    error = "; ".join(f"{name}: {why}" for name, why in history.unreadable.items()) or None
    drills: dict[str, DrillFacts] = {}
    for record in history.records:
        if record.passed:
            drills[record.kind] = DrillFacts(
                record.drill_id, record.kind, record.backup, record.started_at, record.rto_seconds
            )
    return dict(sorted(drills.items())), error
