"""`lifeboat audit`: verify, show and anchor the repositories' audit chains
(repo/audit.py holds the chain itself)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lifeboat.context import Context
from lifeboat.errors import LifeboatError, RepositoryError, UsageError
from lifeboat.repo import audit
from lifeboat.repo.catalog import Repository
from lifeboat.repo.records import actor

log = logging.getLogger(__name__)


@dataclass
class ChainVerification:
    repository: str
    report: audit.ChainReport

    def to_json(self) -> dict[str, Any]:
        return {"repository": self.repository, **self.report.to_json()}


def note_config(context: Context, repositories: list[str], source: str) -> None:
    """After a backup: a `config` event in each repository that got it, when the
    configuration file changed since the repository's newest config event. A failure is
    logged: the backup stands."""
    fingerprint = hashlib.sha256(context.config_path.read_bytes()).hexdigest()
    for name in repositories:
        storage = context.repository(name).storage
        try:
            audit.note_config(storage, fingerprint, source)
        except LifeboatError as exc:
            log.error("%s: the config event is NOT in the audit chain: %s", storage.url, exc)


def parse_anchor(text: str) -> tuple[int, str]:
    """`SEQUENCE:HASH`, as `audit anchor` prints it for an auditor."""
    sequence, _, hash_ = text.partition(":")
    if (
        not sequence.isdigit()
        or len(hash_) != 64
        or not all(c in "0123456789abcdef" for c in hash_)
    ):
        raise UsageError(f"--anchor {text!r} is not SEQUENCE:SHA256 (as `audit anchor` prints it)")
    return int(sequence), hash_


def verify(
    context: Context, repo_name: str | None, given: list[tuple[int, str]] | None = None
) -> list[ChainVerification]:
    """Each repository's chain (or repo_name's), checked against the anchors kept in every
    configured repository and against the given ones."""
    repos = [context.repository(repo_name)] if repo_name else list(context.repositories.values())
    return [
        ChainVerification(repo.name, verify_repository(context, repo, given).report)
        for repo in repos
    ]


def verify_repository(
    context: Context,
    repo: Repository,
    given: list[tuple[int, str]] | None = None,
    unread_keepers: dict[str, str] | None = None,
) -> audit.ChainWalk:
    """One repository's chain, read once, checked against its anchors kept in every
    configured repository and against the given ones; its events come with it. With
    unread_keepers, a repository whose anchors cannot be listed is noted there (name -> why)
    instead of failing the whole walk: the chain itself was read all the same."""
    repo.ensure_initialised()
    walk = audit.walk_chain(repo.storage)
    identity = audit.repository_id(repo.storage)
    for keeper in context.repositories.values():
        try:
            for anchor in audit.anchors_in(keeper.storage, identity, keeper.name):
                audit.check_anchor(walk.report, walk.hashes, anchor)
        except LifeboatError as exc:
            if unread_keepers is None:
                raise
            unread_keepers[keeper.name] = exc.message
    for sequence, hash_ in given or []:
        audit.check_anchor(
            walk.report, walk.hashes, audit.Anchor(identity, sequence, hash_, "given")
        )
    return walk


def head_of(repo: Repository) -> tuple[str, audit.Head]:
    """The repository's id and chain head, once the whole chain verified: an anchor of a
    broken chain would vouch for the tampering."""
    repo.ensure_initialised()
    report, _ = audit.verify_chain(repo.storage)
    if not report.whole:
        raise RepositoryError(
            f"the audit chain of {repo.name} is broken at event {report.first_bad}: not "
            "anchored (run `lifeboat audit verify`)"
        )
    if report.head is None:
        raise RepositoryError(f"repository {repo.name} has no audit events yet: nothing to anchor")
    return audit.repository_id(repo.storage), report.head


def anchor(
    context: Context, repo_name: str | None, target_name: str | None
) -> list[dict[str, Any]]:
    """Write the head of each repository's chain (or repo_name's) into target_name; without a
    target, only return them (for an auditor to keep)."""
    target = context.repository(target_name) if target_name else None
    if target is not None:
        target.ensure_initialised()
    if repo_name:
        repos = [context.repository(repo_name)]
    else:
        repos = [r for r in context.repositories.values() if r is not target]
    if target is not None and target in repos:
        raise UsageError(f"--to {target.name}: a chain's anchor belongs in another repository")
    if not repos:
        raise UsageError("no other repository is configured: nothing to anchor")
    anchors = []
    for repo in repos:
        identity, head = head_of(repo)
        body = {
            "repository": repo.name,
            "repository_id": identity,
            "url": repo.storage.url,
            "sequence": head.sequence,
            "hash": head.hash,
            "head_at": head.at.isoformat(),
            "anchored_at": datetime.now(UTC).isoformat(),
            "by": actor(),
        }
        if target is not None:
            body["kept_in"] = target.name
            body["key"] = audit.write_anchor(target.storage, identity, body, head)
        anchors.append(body)
    return anchors


def show(context: Context, repo_name: str | None, since: datetime | None) -> list[dict[str, Any]]:
    repos = [context.repository(repo_name)] if repo_name else list(context.repositories.values())
    shown = []
    for repo in repos:
        repo.ensure_initialised()
        for event in audit.read_events(repo.storage, since):
            shown.append({"repository": repo.name, "hash": event.hash, **event.to_json()})
    return shown
