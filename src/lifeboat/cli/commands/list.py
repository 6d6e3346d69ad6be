"""lifeboat list [SOURCE]."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.errors import LifeboatError, NotInitialisedError, RepositoryError
from lifeboat.repo.catalog import Damaged
from lifeboat.repo.drills import DrillVerdict
from lifeboat.repo.manifest import Manifest
from lifeboat.repo.records import Hold

log = logging.getLogger(__name__)


@click.command()
@click.argument("source", required=False)
@click.option(
    "--repo",
    "repo_name",
    help="Repository to list, any configured one (default: every one, the source's first).",
)
@json_option
def command(source: str | None, repo_name: str | None, as_json: bool) -> None:
    """List committed backups, oldest first."""
    ctx = state().context()
    repos = ctx.repositories_to_read(source, repo_name)
    from lifeboat.repo.drills import newest_verdicts
    from lifeboat.repo.records import current_holds

    listed = []
    damaged: list[tuple[str, Damaged]] = []
    holds: dict[tuple[str, str], dict[str, Hold]] = {}
    drills: dict[tuple[str, str], dict[str, DrillVerdict]] = {}
    failed: list[tuple[str, LifeboatError]] = []
    for repo in repos:
        try:
            repo.ensure_initialised()
            manifests, unreadable = repo.scan_backups(source)
            for name in sorted({m.source for m in manifests}):
                holds[repo.name, name] = current_holds(repo.storage, name)
                drills[repo.name, name] = newest_verdicts(repo.storage, name)
        except LifeboatError as exc:
            passable = ctx.may_pass_over(source, repo_name, repo)
            if passable and isinstance(exc, NotInitialisedError):
                continue  # another source's repository, or a copy target not set up yet
            if len(repos) == 1:
                raise
            if passable:
                log.warning("repository %s cannot be read: %s", repo.name, exc.message)
                continue
            # the others are still listed: when the primary region is gone, the copies
            # are what is left
            log.warning("repository %s cannot be read: %s", repo.name, exc.message)
            failed.append((repo.name, exc))
            continue
        for bad in unreadable:
            log.warning("%s: %s/%s is damaged: %s", repo.name, bad.source, bad.backup, bad.error)
        damaged += [(repo.name, bad) for bad in unreadable]
        listed += [(repo.name, m) for m in manifests]
    if len(failed) == len(repos):
        raise failed[0][1]
    _show(listed, damaged, holds, drills, [r.name for r in repos], source, as_json)
    if failed:
        raise RepositoryError(
            f"repository {failed[0][0]} cannot be read: {failed[0][1].message}"
            + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
            + "; the others are listed"
        )


def _show(
    listed: list[tuple[str, Manifest]],
    damaged: list[tuple[str, Damaged]],
    holds: dict[tuple[str, str], dict[str, Hold]],
    drills: dict[tuple[str, str], dict[str, DrillVerdict]],
    repo_names: list[str],
    source: str | None,
    as_json: bool,
) -> None:
    def hold_of(repo_name: str, backup: str, source_name: str) -> Hold | None:
        return holds.get((repo_name, source_name), {}).get(backup)

    def drill_of(repo_name: str, backup: str, source_name: str) -> DrillVerdict | None:
        return drills.get((repo_name, source_name), {}).get(backup)

    if wants_json(as_json):
        output.print_json(
            [
                {
                    **m.summary(),
                    "repository": name,
                    "hold": held.summary() if (held := hold_of(name, m.id, m.source)) else None,
                    "drill": drill.summary() if (drill := drill_of(name, m.id, m.source)) else None,
                }
                for name, m in listed
            ]
            + [
                {
                    "id": bad.backup,
                    "source": bad.source,
                    "repository": name,
                    "damaged": str(bad.error),
                }
                for name, bad in damaged
            ]
        )
        return
    if not listed and not damaged:
        names = ", ".join(repo_names)
        click.echo(f"no backups in {names}" + (f" for {source}" if source else ""))
        return
    output.table(
        None,
        [
            "repository",
            "id",
            "source",
            "type",
            "database",
            "size",
            "stored",
            "took",
            "labels",
            "hold",
            "drill",
        ],
        [
            [
                name,
                m.id,
                m.source,
                output.backup_type(m.type, m.safety),
                m.database,
                output.size(m.plain_size),
                output.size(m.stored_size),
                f"{m.summary()['duration_s']:.1f}s",
                output.labels(m.labels),
                hold_text(hold_of(name, m.id, m.source)),
                drill_text(drill_of(name, m.id, m.source)),
            ]
            for name, m in listed
        ]
        + [
            [name, bad.backup, bad.source, "damaged", "", "", "", "", str(bad.error), "", ""]
            for name, bad in damaged
        ],
    )


def hold_text(held: Hold | None) -> str:
    if held is None:
        return ""
    if held.until is None:
        return f"held: {held.reason}"
    state = "held" if held.active(datetime.now(UTC)) else "hold ended"
    return f"{state} until {held.until:%Y-%m-%d}: {held.reason}"


def drill_text(drill: DrillVerdict | None) -> str:
    """A backup's newest drill: `pass 2026-03-04`; empty when it was never drilled."""
    return "" if drill is None else f"{drill.verdict} {drill.at:%Y-%m-%d}"
