"""Restore chosen tables of a logical backup into a database, new or existing.

Into an existing table, the rows are replaced and nothing else is: one psql session, in
one transaction, drops the foreign keys that point at or from the tables (remembering
their definitions), disables the tables' own triggers, empties the tables with TRUNCATE
ONLY (a DELETE would cascade into other tables), loads the backup's rows (the archive's
TABLE DATA entries, which pg_restore writes as COPY), puts the foreign keys back (checking
every row: a violation fails the whole transaction with the constraint's name), enables
the triggers again, checks the row counts and only then sets the tables' sequences to the
backup's values (setval is not undone by a rollback, so nothing may fail after it). The
tables' views, grants, triggers, indexes and comments are never dropped.

A table the target lacks (or every table, in a new database) is created in that same
transaction with what it needs: the schemas, extensions, types, domains, functions and
free-standing sequences the target does not have yet, then the table (a partitioned one
with its partitions), its data, defaults, owned sequences, indexes, constraints, triggers,
policies, comments and grants. A foreign key to a table that is neither restored nor in
the target is left out, and said so. What to restore is decided in table_plan."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from lifeboat.errors import IntegrityError, RestoreError, ToolError
from lifeboat.pipeline.stream import ProcessInput, StoppedReading
from lifeboat.postgres import logical, toc
from lifeboat.postgres.binaries import PgTools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.postgres.toc import TocEntry
from lifeboat.repo.objects import read_plain
from lifeboat.sources.postgres.logical_restore import EvidenceCheck, check_evidence, create_like
from lifeboat.sources.postgres.table_plan import (
    Plan,
    Selection,
    Target,
    check_listing,
    expected_absent,
    make_plan,
)
from lifeboat.util.proc import StderrCollector

if TYPE_CHECKING:
    from lifeboat.sources.postgres.logical_restore import _Job

# what the target already has, each as "<family> <schema> <name>" (schema "-" if none)
_GLOBAL = {
    "SCHEMA": ("pg_namespace", "nspname"),
    "EXTENSION": ("pg_extension", "extname"),
    "LANGUAGE": ("pg_language", "lanname"),
}
_IN_SCHEMA = {
    "TYPE": ("pg_type", "typname", "typnamespace"),
    "COLLATION": ("pg_collation", "collname", "collnamespace"),
    "ROUTINE": ("pg_proc", "proname", "pronamespace"),
    "TS DICTIONARY": ("pg_ts_dict", "dictname", "dictnamespace"),
    "TS CONFIGURATION": ("pg_ts_config", "cfgname", "cfgnamespace"),
    "RELATION": ("pg_class", "relname", "relnamespace"),
}
_TARGET_OBJECTS_SQL = "\nUNION ALL ".join(
    [
        f"SELECT '{family} - ' || {name} FROM {catalog}"
        for family, (catalog, name) in _GLOBAL.items()
    ]
    + [
        f"SELECT '{family} ' || n.nspname || ' ' || o.{name} "
        f"FROM {catalog} o JOIN pg_namespace n ON n.oid = o.{namespace}"
        for family, (catalog, name, namespace) in _IN_SCHEMA.items()
    ]
)

# columns of the named tables that the backup's rows must fill: NOT NULL, no default
_REQUIRED_COLUMNS_SQL = """
SELECT t.name, a.attname::text
FROM unnest(%s::text[]) AS t(name)
JOIN pg_attribute a ON a.attrelid = to_regclass(t.name)
WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef
  AND a.attidentity = '' AND a.attgenerated = ''
"""

# the partitions (at any depth) the target has of the named partitioned tables
_TARGET_PARTITIONS_SQL = """
SELECT t.name, format('%%I.%%I', n.nspname, c.relname)
FROM unnest(%s::text[]) AS t(name)
CROSS JOIN LATERAL pg_partition_tree(to_regclass(t.name)) AS p
JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.level > 0
ORDER BY 1, 2
"""

# the foreign keys to drop and put back: every one from or to the tables, taken at its
# root (a partition's copy of its parent's key cannot be dropped on its own)
_FOREIGN_KEYS_SQL = """
WITH RECURSIVE touched AS (
  SELECT co.oid, co.conparentid FROM pg_constraint co
  WHERE co.contype = 'f'
    AND (co.conrelid = ANY(%(tables)s::regclass[]) OR co.confrelid = ANY(%(tables)s::regclass[]))
  UNION
  SELECT p.oid, p.conparentid FROM pg_constraint p JOIN touched ON p.oid = touched.conparentid
)
SELECT DISTINCT format('%%I.%%I', n.nspname, c.relname), co.conname::text,
       pg_get_constraintdef(co.oid), obj_description(co.oid, 'pg_constraint')
FROM touched JOIN pg_constraint co ON co.oid = touched.oid AND co.conparentid = 0
JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1, 2
"""

# the tables' own triggers that are enabled now, and how (O, A or R)
_TRIGGERS_SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname), t.tgname::text, t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgrelid = ANY(%s::regclass[]) AND NOT t.tgisinternal AND t.tgenabled <> 'D'
ORDER BY 1, 2
"""
_ENABLE = {"O": "ENABLE", "A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"}


def inspect_target(conn: psycopg.Connection[Any], selection: Selection) -> Target:
    """Read what the target has and refuse a table it cannot take, before anything changes:
    a name that is not a table there, or one whose columns do not fit the backup's rows."""
    target = Target(objects={r[0] for r in conn.execute(_TARGET_OBJECTS_SQL)})
    have = logical.table_facts(conn)
    required: dict[str, list[str]] = {}
    for name, column in conn.execute(_REQUIRED_COLUMNS_SQL, (selection.tables,)):
        required.setdefault(name, []).append(column)
    kinds = {True: "a partitioned table", False: "a table"}
    for name in selection.tables:
        wanted = selection.facts(name)
        there = have.get(name)
        if there is None:
            if target.has_relation(name):
                raise RestoreError(
                    f"{name} is not a table in the target database: rename or drop it first"
                )
            continue
        if there.partitioned != wanted.partitioned:
            raise RestoreError(
                f"{name} is {kinds[there.partitioned]} in the target database, "
                f"{kinds[wanted.partitioned]} in the backup: rename or drop it first"
            )
        missing = [c for c in wanted.columns if c not in there.columns]
        extra = [c for c in required.get(name, []) if c not in wanted.columns]
        if wanted.columns and (missing or extra):
            problem = (
                f"lacks column(s) {', '.join(missing)} of the backup"
                if missing
                else f"has column(s) {', '.join(extra)} the backup lacks, NOT NULL "
                "without a default"
            )
            raise RestoreError(
                f"{name} in the target {problem}: its rows cannot be restored into it"
            )
        target.kinds[name] = "p" if there.partitioned else "r"
        target.sequences[name] = there.sequences
    _refuse_unknown_partitions(conn, selection, target)
    return target


def _refuse_unknown_partitions(
    conn: psycopg.Connection[Any], selection: Selection, target: Target
) -> None:
    """A partition the target has and the backup lacks (one created since, say) would
    keep its rows in the restored table: refused, naming it."""
    partitioned = [name for name, kind in target.kinds.items() if kind == "p"]
    if not partitioned:
        return
    unknown: dict[str, list[str]] = {}
    for parent, partition in conn.execute(_TARGET_PARTITIONS_SQL, (partitioned,)):
        if partition not in selection.tables:
            unknown.setdefault(parent, []).append(partition)
    if unknown:
        parent, partitions = next(iter(unknown.items()))
        raise RestoreError(
            f"{parent} in the target has partition(s) {', '.join(partitions)} the backup "
            "lacks, whose rows would stay: detach or drop them first"
        )


# -------------------------------------------------------------------------------- SQL


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Session:
    """The SQL around pg_restore's output in the one transaction."""

    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


def session_sql(conn: psycopg.Connection[Any], selection: Selection, target: Target) -> Session:
    """Empty the existing tables without touching any other: drop the foreign keys from
    and to them, disable their triggers, TRUNCATE ONLY; afterwards undo all but the
    emptying, and check the row counts."""
    session = Session(before=["BEGIN;"])
    existing = [name for name in selection.tables if target.has(name)]
    with_rows = [name for name in existing if target.kinds[name] == "r"]
    if existing:
        # definitions with every name qualified, whatever the search path
        conn.execute("SELECT pg_catalog.set_config('search_path', '', false)")
        for table, name, definition, comment in conn.execute(
            _FOREIGN_KEYS_SQL, {"tables": existing}
        ).fetchall():
            constraint = sql.Identifier(name).as_string(conn)
            session.before.append(f"ALTER TABLE {table} DROP CONSTRAINT {constraint};")
            session.after.append(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {definition};")
            if comment is not None:
                session.after.append(
                    f"COMMENT ON CONSTRAINT {constraint} ON {table} IS {_literal(comment)};"
                )
        for table, name, enabled in conn.execute(_TRIGGERS_SQL, (with_rows,)).fetchall():
            trigger = sql.Identifier(name).as_string(conn)
            session.before.append(f"ALTER TABLE {table} DISABLE TRIGGER {trigger};")
            session.after.append(f"ALTER TABLE {table} {_ENABLE[enabled]} TRIGGER {trigger};")
    if with_rows:
        session.before.append(f"TRUNCATE ONLY {', '.join(with_rows)};")
    session.after.append(_row_count_check(selection))
    return session


def _row_count_check(selection: Selection) -> str:
    """A DO block failing the transaction when a table's rows are not the backup's."""
    counts = selection.evidence.row_counts
    values = ", ".join(f"({_literal(name)}, {counts[name]})" for name in selection.with_rows)
    if not values:
        return ""
    tag = f"$lifeboat_{secrets.token_hex(4)}$"
    return f"""DO {tag}
DECLARE r record; n bigint;
BEGIN
  FOR r IN SELECT * FROM (VALUES {values}) AS v(name, expected) LOOP
    EXECUTE format('SELECT count(*) FROM ONLY %s', r.name) INTO n;
    IF n <> r.expected THEN
      RAISE EXCEPTION 'restored table % has % rows, the backup has %', r.name, n, r.expected;
    END IF;
  END LOOP;
END {tag};"""


# ---------------------------------------------------------------------------- running


class _Head(ProcessInput):
    """pg_restore printing something from the archive's head (its table of contents, or
    entries without data); it stops reading once it has that."""

    def __init__(self, job: _Job, arguments: list[str]) -> None:
        super().__init__(
            [job.tools.path("pg_restore"), *arguments], keep_stdout=True, discard_rest=False
        )

    def failed(self) -> Exception:
        return RestoreError(f"pg_restore failed reading the backup: {self.failure()}")


def _read_head(job: _Job, arguments: list[str]) -> str:
    process = _Head(job, arguments)
    try:
        read_plain(job.repo, job.manifest, job.manifest.objects[0], job.decryptor, process)
    except StoppedReading:
        pass  # pg_restore has what it needed from the head of the archive
    except BaseException:
        process.kill()
        raise
    process.finish()
    assert process.stdout is not None
    return process.stdout.text


class _Script(ProcessInput):
    """pg_restore turning the chosen entries into SQL, written straight into psql."""

    def __init__(self, job: _Job, list_file: str, psql_stdin: Any) -> None:
        super().__init__(
            [job.tools.path("pg_restore"), "--no-owner", "--use-list", list_file, "--file", "-"],
            stdout=psql_stdin,
        )

    def failed(self) -> Exception:
        return RestoreError(f"pg_restore failed, nothing was changed: {self.failure()}")


def _write_list(directory: str, entries: list[TocEntry]) -> str:
    path = os.path.join(directory, "entries.list")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(e.line + "\n" for e in entries))
    return path


def _psql_error(stderr: StderrCollector, returncode: int | None) -> str:
    """psql's first ERROR line (and its DETAIL), without the script position."""
    lines = stderr.lines()
    errors = [i for i, line in enumerate(lines) if "ERROR:" in line]
    if not errors:
        return lines[-1] if lines else f"psql exited {returncode}"
    first = errors[0]
    message = " ".join(lines[first].split("ERROR:", 1)[1].split())
    following = lines[first + 1] if first + 1 < len(lines) else ""
    if "DETAIL:" in following:
        message += " (" + " ".join(following.split("DETAIL:", 1)[1].split()) + ")"
    return message


def _run_session(job: _Job, plan: Plan, session: Session, setvals: str, label: str) -> None:
    """The SQL before, pg_restore's SQL for the plan, the SQL after and COMMIT, in one psql
    session. COMMIT is written only once pg_restore has finished well: should it fail,
    psql reaches the end of its input inside the transaction and the server rolls it back."""
    command = [job.tools.path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password"]
    command += ["--dbname", job.endpoint.conninfo(), "--file", "-"]
    with tempfile.TemporaryDirectory(prefix="lifeboat-tables-") as folder:
        list_file = _write_list(folder, plan.entries)
        psql = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=job.endpoint.env(),
        )
        assert psql.stdin is not None and psql.stderr is not None
        errors = StderrCollector(psql.stderr)
        errors.start()
        try:
            psql.stdin.write(("\n".join(session.before) + "\n").encode())
            psql.stdin.flush()
            if plan.entries:
                # pg_restore writes into psql's stdin too; ours stays open for the end
                job.stream_into(_Script(job, list_file, psql.stdin), f"restore {label}")
            psql.stdin.write(("\n".join([*session.after, setvals, "COMMIT;"]) + "\n").encode())
        except BaseException as exc:
            with contextlib.suppress(OSError):
                psql.stdin.close()  # psql ends: at its error, or at the end without COMMIT
            psql.wait()
            errors.join()
            if psql.returncode != 0 and isinstance(exc, (OSError, RestoreError)):
                # psql stopped at an error, and pg_restore (or we) could write no more
                raise _session_failed(label, errors, psql.returncode) from None
            raise
        with contextlib.suppress(BrokenPipeError):
            psql.stdin.close()
        psql.wait()
        errors.join()
        if psql.returncode != 0:
            raise _session_failed(label, errors, psql.returncode)


def _session_failed(label: str, errors: StderrCollector, returncode: int) -> RestoreError:
    return RestoreError(
        f"restore of {label} failed, nothing was changed: {_psql_error(errors, returncode)}"
    )


def prepare(
    tools: PgTools, server_major: int, endpoint: PgEndpoint, selection: Selection, exists: bool
) -> Target:
    """Everything checked before anything changes (and before a safety backup is taken):
    the tools fit the server, and an existing target can take the tables."""
    check_tools(tools, server_major)
    if not exists:
        return Target()
    with endpoint.connect(autocommit=True) as conn:
        return inspect_target(conn, selection)


def check_tools(tools: PgTools, server_major: int) -> None:
    """psql is there, and pg_restore's script will run on the server: from version 17 on,
    it sets transaction_timeout, which an older server refuses (pg_restore leaves it out
    only when it talks to the server itself, as a whole restore does)."""
    if not os.access(tools.bin_dir / "psql", os.X_OK):
        raise ToolError(f"a table restore runs psql, which {tools.bin_dir} lacks")
    if tools.major >= 17 > server_major:
        raise ToolError(
            f"a table restore needs pg_restore {tools.major} (the backup's pg_dump or newer), "
            f"whose script PostgreSQL {server_major} does not run: restore the whole backup "
            "into a new database there instead"
        )


def restore(job: _Job, selection: Selection, target: Target) -> tuple[EvidenceCheck, list[str]]:
    """Restore the selected tables into job's database (created when it does not exist);
    returns the evidence check of those tables and what was left out, and why."""
    listing = _read_head(job, ["--list"])
    setvals = ""
    if not job.exists:
        create_like(job.admin, job.database, job.manifest)
    try:
        with job.endpoint.connect(autocommit=True) as conn:
            if not job.exists:  # what a new database has from its template
                target = inspect_target(conn, selection)
            plan = make_plan(toc.parse(listing), selection, target)
            check_listing(plan)
            session = session_sql(conn, selection, target)
        if plan.sequence_sets:
            with tempfile.TemporaryDirectory(prefix="lifeboat-tables-") as folder:
                list_file = _write_list(folder, plan.sequence_sets)
                setvals = _read_head(job, ["--use-list", list_file, "--file", "-"])
        _run_session(job, plan, session, setvals, ", ".join(selection.asked))
    except BaseException:
        if not job.exists:
            logical.drop_database(job.admin, job.database)
        raise
    with job.endpoint.connect(autocommit=True) as conn:
        check = check_evidence(conn, selection.evidence, selection.tables)
    kept = set(selection.tables) - set(plan.created)
    notes = plan.notes + _set_aside(check, expected_absent(plan, selection, target), kept)
    if not check.ok:
        raise IntegrityError(
            f"restored tables do not match backup {job.manifest.id}: "
            + "; ".join(check.problems()[:5])
        )
    return check, notes


def _set_aside(check: EvidenceCheck, absent: set[tuple[str, str]], kept: set[str]) -> list[str]:
    """Take out of the check what the restore did not create, and say so: the constraints
    it rightly left out (not noted again), and the indexes and constraints the backup has
    and a kept table lacks (its rows were replaced, its definition is the target's)."""

    def parts(name: str) -> tuple[str, str]:
        schema, table, own = toc.identifiers(name)
        return f"{schema.written}.{table.written}", own.raw

    notes = []
    left_out = [c for c in check.missing_constraints if parts(c) in absent]
    unlike_indexes = [i for i in check.missing_indexes if parts(i)[0] in kept]
    unlike_constraints = [c for c in check.missing_constraints if parts(c)[0] in kept]
    for kind, names in (("index", unlike_indexes), ("constraint", unlike_constraints)):
        notes += [
            f"{kind} {parts(name)[1]} of {parts(name)[0]} is in the backup, not in the target's "
            "table (left as it was)"
            for name in names
        ]
    check.missing_indexes = [i for i in check.missing_indexes if i not in unlike_indexes]
    set_aside = set(left_out) | set(unlike_constraints)
    check.missing_constraints = [c for c in check.missing_constraints if c not in set_aside]
    check.checked_indexes -= len(unlike_indexes)
    check.checked_constraints -= len(set_aside)
    return notes
