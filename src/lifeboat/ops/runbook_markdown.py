"""The runbook's Markdown: read by a person restoring under stress, so every command is
complete, with this configuration's real path and ids, ready to copy."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from lifeboat.ops.runbook import BackupFacts, DrillFacts, Runbook
from lifeboat.policy.drill import seconds_text

ROW_COUNTS_SHOWN = 10  # tables listed to compare; the manifest holds them all
MANUAL_RESTORE_DOC = "docs/manual-restore.md"
POSTGRES_TYPES = ("logical", "physical")
# the kinds restored to a path: an example target, and what the decrypted,
# decompressed object is for a person restoring by hand
PATH_KINDS: dict[str, tuple[str, str]] = {
    "redis": (
        "/srv/restore/{source}.rdb",
        "an RDB file: stop Redis, put it in place as its `dbfilename` in its `dir`, start it",
    ),
    "files": ("/srv/restore/{source}/", "a tar archive: `tar -x` extracts it"),
    "sqlite": ("/srv/restore/{source}.db", "the database file itself"),
}


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _lifeboat(book: Runbook, *args: str) -> str:
    return shlex.join(["lifeboat", "--config", str(book.config_path), *args])


def _code(lines: list[str]) -> list[str]:
    return ["```bash", *lines, "```", ""]


def _where(book: Runbook) -> list[str]:
    out = ["## Where the backups are", ""]
    if not book.newest:
        out += ["**No backup of this source was found in any repository.**", ""]
    for kind, backup in book.newest.items():
        out.append(
            f"- newest **{kind}** backup: `{backup.id}`, finished {_when(backup.finished_at)}, "
            f"held by {', '.join(backup.repositories)}"
        )
    if book.source_type == "postgres":
        wal = "yes" if book.archives_wal else "none found"
        out.append(f"- WAL archive (point-in-time recovery): {wal}")
    out += [
        "",
        "Repositories, in the order restore tries them:",
        "",
    ]
    for number, repo in enumerate(book.repositories, 1):
        line = f"{number}. `{repo.name}`: {repo.url}"
        if repo.error:
            line += f" (**could not be read when this runbook was written**: {repo.error})"
        out.append(line)
    return [*out, ""]


def _restore(book: Runbook) -> list[str]:
    out = ["## Restore with Lifeboat", ""]
    logical = book.newest.get("logical")
    if logical is not None:
        database = logical.database
        restore = ["restore", book.source, "--backup", logical.id]
        another_server = ["--target-dsn", "postgresql://postgres@NEW-HOST:5432/postgres"]
        out += [
            f"### Logical restore (database `{database}`)",
            "",
            "Into the original database on the source's server. If the database still "
            "exists, restore asks you to type its name (in a script: add `--yes`) and first "
            "keeps it as a safety backup in the repository:",
            "",
            *_code([_lifeboat(book, *restore)]),
            "Into another database, or another server (its password from a file):",
            "",
            *_code(
                [
                    _lifeboat(book, *restore, "--target-db", f"{database}_restored"),
                    _lifeboat(
                        book,
                        *restore,
                        *another_server,
                        "--target-password-file",
                        "/path/to/password",
                    ),
                ]
            ),
            "Replace `--backup ID` by `--backup latest` to take whatever is newest then.",
            "",
        ]
    if book.archives_wal:
        out += [
            "### Point-in-time recovery (physical)",
            "",
            *_physical_base(book.newest.get("physical")),
            "Into an empty data directory, recovering up to a moment (or `--latest`); "
            "`--start` starts the cluster once recovery ends:",
            "",
            *_code(
                [
                    _lifeboat(
                        book,
                        "restore",
                        book.source,
                        "--pgdata",
                        "/var/lib/postgresql/restored",
                        "--to-time",
                        "YYYY-MM-DD HH:MM:SS+00",
                        "--start",
                    )
                ]
            ),
            "See docs/pitr.md for the other targets (`--to-lsn`, `--to-xid`, `--to-name`).",
            "",
        ]
    path_kinds = [(kind, backup) for kind, backup in book.newest.items() if kind in PATH_KINDS]
    for kind, backup in path_kinds:
        out += _path_restore(book, kind, backup)
    if logical is None and not book.archives_wal and not path_kinds:
        out += ["No backup to restore from was found: there is no command to give.", ""]
    return out


def _path_restore(book: Runbook, kind: str, backup: BackupFacts) -> list[str]:
    """A Redis, files or SQLite backup: restored to a path, checked against its evidence
    before it is put there."""
    target = PATH_KINDS[kind][0].format(source=book.source)
    restore = ["restore", book.source, "--backup", backup.id, "--to", target]
    out = [
        f"### Restore of the {kind} backup to a path",
        "",
        "Checked against the backup's evidence before it is put in place; something already "
        "at the path is replaced only with `--yes`:",
        "",
        *_code([_lifeboat(book, *restore)]),
    ]
    if kind == "files":
        out += [
            "Only part of the tree (a folder with what is under it, as the archive names it):",
            "",
            *_code([_lifeboat(book, *restore, "--path", "PATH/IN/THE/ARCHIVE")]),
        ]
    return [
        *out,
        f"Replace `--backup ID` by `--backup latest` to take whatever is newest then; see "
        f"docs/{kind}.md for putting it back into service.",
        "",
    ]


def _physical_base(physical: BackupFacts | None) -> list[str]:
    if physical is None:
        return [
            "**WAL is archived but no physical backup was found: point-in-time recovery "
            "needs one (`lifeboat backup SOURCE --type physical`).**",
            "",
        ]
    return [f"Restore picks the base backup for the target itself (newest: `{physical.id}`).", ""]


def _keys(book: Runbook) -> list[str]:
    out = [
        "## Keys and credentials",
        "",
        "Backing up needs no secret; restoring needs these (values are never written here):",
        "",
        f"- decryption ({book.encryption_method}): {book.key_setting}. Keep a copy of it "
        "away from the database server and its repositories.",
    ]
    for repo in book.repositories:
        where = "; ".join(repo.credentials) or "the file system's permissions (a local folder)"
        out.append(f"- repository `{repo.name}`: {where}")
    out.append(
        f"- the configuration file itself: `{book.config_path}` (with its `password_file` "
        "and `${NAME}` settings)"
    )
    return [*out, ""]


def _duration(book: Runbook) -> list[str]:
    out = ["## Expected duration", ""]
    if book.rto_objective:
        out += [f"Recovery time objective: {book.rto_objective}.", ""]
    if book.drills_error:
        out += [f"**Drill records could not be read ({book.drills_error}).**", ""]
    if not book.drills:
        return [
            *out,
            "**No restore drill has passed yet: the time a restore takes is unknown.** "
            f"Run `{_lifeboat(book, 'drill', book.source)}` to measure it.",
            "",
        ]
    for kind, drill in book.drills.items():
        out.append(f"- {kind}: {_drill_line(drill)}")
    for kind in sorted(set(book.newest) - set(book.drills)):
        out.append(f"- {kind}: no drill of a {kind} backup has passed yet")
    return [*out, ""]


def _drill_line(drill: DrillFacts) -> str:
    rto = seconds_text(drill.rto_seconds) if drill.rto_seconds is not None else "not measured"
    return (
        f"RTO {rto} in drill `{drill.drill_id}` of {_when(drill.started_at)} "
        f"(backup `{drill.backup}`)"
    )


def _manual(book: Runbook) -> list[str]:
    decrypts = f"`{book.encryption_method}` decrypts, `zstd --decompress` decompresses"
    if book.source_type in PATH_KINDS:
        then = f"the first object is then {PATH_KINDS[book.source_type][1]}"
    else:
        then = "`pg_restore` (or the tar of a physical backup) restores"
    out = [
        "## Emergency path without Lifeboat",
        "",
        f"If Lifeboat cannot run, follow {MANUAL_RESTORE_DOC}: {decrypts}, {then}. The "
        "objects of the newest backups, under the repository's root:",
        "",
    ]
    for kind, backup in book.newest.items():
        out.append(f"- {kind} `{backup.id}`:")
        out += [f"  - `{key}`" for key in backup.object_keys]
    if not book.newest:
        out.append("- (no backup found)")
    return [*out, ""]


def _verify(book: Runbook, logical: BackupFacts | None) -> list[str]:
    out = [
        "## Verify afterwards",
        "",
        "Check the repositories and the backups' objects:",
        "",
        *_code([_lifeboat(book, "verify", book.source)]),
    ]
    if logical is not None and logical.row_counts:
        out += [
            f"Compare row counts with the evidence of backup `{logical.id}` "
            "(a Lifeboat restore checks them all itself; after a manual restore, query them):",
            "",
            "| table | rows at backup |",
            "| --- | ---: |",
        ]
        shown = sorted(logical.row_counts.items())[:ROW_COUNTS_SHOWN]
        out += [f"| `{table}` | {rows} |" for table, rows in shown]
        if len(logical.row_counts) > ROW_COUNTS_SHOWN:
            out.append(f"| ... {len(logical.row_counts) - ROW_COUNTS_SHOWN} more |  |")
        out.append("")
    return out


def _notify(book: Runbook) -> list[str]:
    out = ["## Whom to notify", ""]
    if book.contacts:
        return [*out, *(f"- {contact}" for contact in book.contacts), ""]
    return [
        *out,
        "No contacts are configured: fill them in here, or list them in "
        f"`[sources.{book.source}.runbook] contacts` and regenerate (on-call, database "
        "owner, the application's team, management, the auditor).",
        "",
        "- (name, role, phone, e-mail)",
        "",
    ]


def render(book: Runbook) -> str:
    head = [
        f"# Disaster-recovery runbook: {book.source}",
        "",
        f"Generated {_when(book.generated_at)} by Lifeboat {book.lifeboat_version} from "
        f"`{book.config_path}` and what the repositories held then. Regenerate it with "
        f"`{_lifeboat(book, 'runbook', book.source, '--output', 'RUNBOOK.md')}`.",
        "",
    ]
    body = [
        *_where(book),
        *_restore(book),
        *_keys(book),
        *_duration(book),
        *_manual(book),
        *_verify(book, book.newest.get("logical")),
        *_notify(book),
    ]
    return "\n".join(head + body).rstrip("\n") + "\n"
