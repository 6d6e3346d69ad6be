"""`restore --table` on the production-like schema: into the database it came from (rows
replaced, everything else left as it was) and into a new database, on every available
PostgreSQL version; what Lifeboat refuses or rolls back, on the oldest. One backup serves
the whole module; each test restores into its own copy of the backed-up database."""

from __future__ import annotations

import io
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.postgres.instance import ScratchCluster

from .helpers import LIFEBOAT, Workspace, error_line, make_workspace, table_digests
from .production import TABLES, create_production_db, schema_dump
from .versions import on_oldest_major


@dataclass
class Backup:
    """The backed-up database (never changed), its workspace and what the backup holds."""

    ws: Workspace
    db: str
    digests: dict[str, str]


@pytest.fixture(scope="module")
def backup(
    pg_cluster: ScratchCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backup]:
    db = f"prod_{uuid.uuid4().hex[:12]}"
    create_production_db(pg_cluster, db)
    ws = make_workspace(tmp_path_factory.mktemp("tables"), pg_cluster.dsn(db), in_process=True)
    ws.run("backup", "wms", check=True)
    try:
        yield Backup(ws, db, table_digests(pg_cluster, db))
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def copy(pg_cluster: ScratchCluster, backup: Backup) -> Iterator[str]:
    """A copy of the backed-up database to change and restore into."""
    name = f"copy_{uuid.uuid4().hex[:12]}"
    pg_cluster.psql(f'CREATE DATABASE "{name}" TEMPLATE "{backup.db}"')
    try:
        yield name
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sequences_of(cluster: ScratchCluster, db: str, tables: list[str]) -> dict[str, str]:
    """last_value of the sequences the tables own."""
    names = ", ".join("'" + t.replace("'", "''") + "'" for t in tables)
    rows = cluster.psql(
        "SELECT format('%I.%I', n.nspname, s.relname) || '=' || "
        "coalesce(ps.last_value::text, 'unset') "
        "FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "JOIN pg_namespace n ON n.oid = s.relnamespace "
        "JOIN pg_sequences ps ON ps.schemaname = n.nspname AND ps.sequencename = s.relname "
        f"WHERE d.refobjid IN (SELECT unnest(ARRAY[{names}])::regclass) "
        "AND d.deptype IN ('a', 'i') ORDER BY 1",
        db,
    )
    return dict(line.split("=", 1) for line in rows.splitlines())


def privileges(cluster: ScratchCluster, db: str, tables: list[str]) -> dict[str, str]:
    """What the schema's roles may do with each table."""
    found = {}
    for table in tables:
        literal = table.replace("'", "''")
        found[table] = cluster.psql(
            "SELECT string_agg(r || ':' || p || '=' || has_table_privilege(r, t, p), ' ') "
            "FROM unnest(ARRAY['report reader', 'wms.app']) r, "
            "unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) p, "
            f"(SELECT '{literal}' AS t) s",
            db,
        )
    return found


def without_owners(schema: str) -> str:
    return re.sub(r"(Owner: |OWNER TO )\S+", r"\1-", schema)


def backups_in(ws: Workspace) -> list[str]:
    return [b["id"] for b in ws.run_json("list")]


PAYMENT = [
    "public.payment",
    "public.payment_default",
    "public.payment_p2026_01",
    "public.payment_p2026_02",
]

# (what the user types, the tables it restores, how the copy is changed first)
EXISTING_CASES = [
    pytest.param(
        "film",
        ["public.film"],
        "UPDATE film SET title = 'changed' WHERE film_id < 50;"
        "INSERT INTO film (title, language_id) VALUES ('new film', 1);",
        id="referenced-by-views-and-fks",
    ),
    pytest.param(
        "public.payment",
        PAYMENT,
        # a trigger firing on the restored rows would write into payment_log
        "CREATE TABLE payment_log (id int);"
        "CREATE FUNCTION log_payment() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN INSERT INTO payment_log VALUES (NEW.payment_id); RETURN NEW; END$$;"
        "CREATE TRIGGER log AFTER INSERT ON payment FOR EACH ROW EXECUTE FUNCTION log_payment();"
        "DELETE FROM payment WHERE payment_id % 3 = 0;"
        "UPDATE payment SET amount = 1 WHERE payment_id % 5 = 0;"
        "INSERT INTO payment (customer_id, amount, payment_date) "
        "VALUES (1, 9.99, '2026-01-05 10:00+00'), (2, 1.50, '2030-01-01 00:00+00');",
        id="partitioned-parent",
    ),
    pytest.param(
        "payment_p2026_01",
        ["public.payment_p2026_01", "public.payment"],  # the parent shows the partition's rows
        "DELETE FROM payment WHERE payment_date < '2026-01-10';",
        id="single-partition",
    ),
    pytest.param(
        "actor",
        ["public.actor"],
        "UPDATE actor SET first_name = 'Changed' WHERE actor_id % 2 = 0;"
        "INSERT INTO actor (first_name, last_name) VALUES ('New', 'Actor');",
        id="identity-and-cascading-fk",
    ),
    pytest.param(
        "language",
        ["public.language"],
        "UPDATE language SET name = 'changed' WHERE language_id = 2;",
        id="referenced-by-fk-with-on-update-cascade",
    ),
    # how the typed name is read is Lifeboat's: these four run on one major
    pytest.param(
        "a.b",
        ['public."a.b"'],
        'DELETE FROM "a.b" WHERE id > 20;',
        id="dot-in-the-name",
        marks=on_oldest_major,
    ),
    pytest.param(
        '"café ☕"',
        ['public."café ☕"'],
        'INSERT INTO "café ☕" ("naïve ""name"" col") VALUES (\'new\');',
        id="unicode-name",
        marks=on_oldest_major,
    ),
    pytest.param(
        '"Sales EU"."Order Items"',
        ['"Sales EU"."Order Items"'],
        'UPDATE "Sales EU"."Order Items" SET "qty ü" = 99 WHERE item_id < 100;',
        id="spaces-quoted",
        marks=on_oldest_major,
    ),
    pytest.param(
        "Sales EU.Order Items",
        ['"Sales EU"."Order Items"'],
        'DELETE FROM "Sales EU"."Order Items" WHERE item_id > 700;',
        id="spaces-unquoted",
        marks=on_oldest_major,
    ),
]


@pytest.mark.parametrize(("typed", "restored", "change"), EXISTING_CASES)
def test_table_restore_replaces_only_the_tables_rows(
    pg_cluster: ScratchCluster,
    backup: Backup,
    copy: str,
    typed: str,
    restored: list[str],
    change: str,
) -> None:
    pg_cluster.psql(change, copy)
    changed = table_digests(pg_cluster, copy)
    assert any(changed[t] != backup.digests[t] for t in restored)  # the change took
    schema_before = schema_dump(pg_cluster, copy)

    result = backup.ws.run_json("restore", "wms", "--target-db", copy, "--table", typed, "--yes")

    assert result["verified"] is True and result["created"] is False
    assert result["safety_backup"]
    assert sorted(t["table"] for t in result["tables"]) == sorted(
        t for t in restored if t != "public.payment"
    )
    after = table_digests(pg_cluster, copy)
    assert set(after) == set(changed)
    for table in changed:
        expected = backup.digests if table in restored else changed
        assert after[table] == expected[table], table
    # views, foreign keys, grants, triggers and comments are all still there, as they were
    # the same definition, key, index attached to the parent's, trigger and grants; only
    # the owner differs: a table restore creates tables as the user it connects as
    assert without_owners(schema_dump(pg_cluster, copy)) == without_owners(schema_before)
    assert sequences_of(pg_cluster, copy, restored) == sequences_of(pg_cluster, backup.db, restored)
    # the restored tables' triggers fire again
    pg_cluster.psql("UPDATE film SET length = length WHERE film_id = 1", copy)
    assert (
        pg_cluster.psql(
            "SELECT last_update > now() - interval '1 hour' FROM film WHERE film_id = 1", copy
        )
        == "t"
    )


def test_table_restore_text_output_counts_only_the_tables(
    pg_cluster: ScratchCluster, backup: Backup, copy: str
) -> None:
    done = backup.ws.run(
        "restore", "wms", "--target-db", copy, "--table", "payment", "--yes", check=True
    )
    # the three partitions' rows; the parent's and partitions' indexes and constraints
    rows = sum(int(backup.digests[t].split(":")[0]) for t in PAYMENT[1:])
    indexes = int(
        pg_cluster.psql(
            "SELECT count(*) FROM pg_index WHERE indrelid IN "
            "(SELECT relid FROM pg_partition_tree('payment'))",
            copy,
        )
    )
    constraints = int(
        pg_cluster.psql(
            "SELECT count(*) FROM pg_constraint WHERE contype <> 'n' AND conrelid IN "
            "(SELECT relid FROM pg_partition_tree('payment'))",
            copy,
        )
    )
    assert (
        f"verified: 3 tables, {rows} rows match the backup; {indexes} indexes and "
        f"{constraints} constraints present"
    ) in done.stdout


NEW_CASES = [
    pytest.param(
        ["film"],
        ["public.film"],
        ["film_language_id_fkey of public.film"],
        id="film-without-language",
    ),
    pytest.param(["film", "language"], ["public.film", "public.language"], [], id="film-and-fk"),
    pytest.param(
        ["payment"],
        PAYMENT,
        ["payment_customer_id_fkey of public.payment", "payment_rental_id_fkey of public.payment"],
        id="partitioned",
    ),
    pytest.param(["payment_p2026_02"], ["public.payment_p2026_02"], [], id="lone-partition"),
    pytest.param(["actor", "a.b"], ["public.actor", 'public."a.b"'], [], id="identity-dots"),
    pytest.param(
        ["Sales EU.Order Items", '"café ☕"'],
        ['"Sales EU"."Order Items"', 'public."café ☕"'],
        ['"Order Items_customer_id_fkey" of "Sales EU"."Order Items"'],
        id="schema-enum-function-default",
    ),
]


@pytest.mark.parametrize(("typed", "restored", "left_out"), NEW_CASES)
def test_table_restore_into_a_new_database_brings_what_the_tables_need(
    pg_cluster: ScratchCluster,
    backup: Backup,
    typed: list[str],
    restored: list[str],
    left_out: list[str],
) -> None:
    target = f"new_{uuid.uuid4().hex[:12]}"
    args = [arg for name in typed for arg in ("--table", name)]
    try:
        result = backup.ws.run_json("restore", "wms", "--target-db", target, *args)
        assert result["verified"] is True and result["created"] is True
        assert result["safety_backup"] is None
        restored_digests = table_digests(pg_cluster, target)
        assert restored_digests == {t: backup.digests[t] for t in restored}
        assert sequences_of(pg_cluster, target, restored) == sequences_of(
            pg_cluster, backup.db, restored
        )
        assert privileges(pg_cluster, target, restored) == privileges(
            pg_cluster, backup.db, restored
        )
        notes = " ".join(result["notes"])
        for constraint in left_out:
            name, table = constraint.split(" of ")
            assert f"foreign key {name.strip(chr(34))} of {table} left out" in notes
        assert len(result["notes"]) == len(left_out)
        # defaults, identity and the trigger work in the new database
        if "public.film" in restored:
            pg_cluster.psql("UPDATE film SET length = 1 WHERE film_id = 1", target)
        if "public.actor" in restored:
            made = pg_cluster.psql(
                "INSERT INTO actor (first_name, last_name) VALUES ('a', 'b') RETURNING actor_id",
                target,
            )
            assert made.splitlines()[0] == "201"
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


@on_oldest_major  # Lifeboat's rollback of what the server refused
def test_a_violated_foreign_key_fails_the_restore_and_changes_nothing(
    pg_cluster: ScratchCluster, backup: Backup, copy: str
) -> None:
    # the backup's films speak language 4, which the copy no longer has
    pg_cluster.psql(
        "UPDATE film SET language_id = 1 WHERE language_id = 4; "
        "DELETE FROM language WHERE language_id = 4; "
        "INSERT INTO film (title, language_id) VALUES ('after the backup', 2);",
        copy,
    )
    before = table_digests(pg_cluster, copy)
    schema_before = schema_dump(pg_cluster, copy)
    sequences_before = sequences_of(pg_cluster, copy, ["public.film"])

    failed = backup.ws.run("restore", "wms", "--target-db", copy, "--table", "film", "--yes")

    assert failed.returncode == 1
    line = error_line(failed)
    assert "nothing was changed" in line and '"film_language_id_fkey"' in line, line
    assert table_digests(pg_cluster, copy) == before
    # the same definition, key, index attached to the parent's, trigger and grants; only
    # the owner differs: a table restore creates tables as the user it connects as
    assert without_owners(schema_dump(pg_cluster, copy)) == without_owners(schema_before)
    assert sequences_of(pg_cluster, copy, ["public.film"]) == sequences_before


@on_oldest_major  # refused by Lifeboat before the server is asked to change anything
def test_a_refused_table_restore_takes_no_safety_backup(
    pg_cluster: ScratchCluster, backup: Backup, copy: str
) -> None:
    ws = backup.ws
    pg_cluster.psql(
        "ALTER TABLE film DROP COLUMN description CASCADE;"
        'DROP TABLE "a.b"; CREATE VIEW "a.b" AS SELECT 1 AS id;'
        "ALTER TABLE actor ADD COLUMN born date NOT NULL DEFAULT '2000-01-01';"
        "ALTER TABLE actor ALTER COLUMN born DROP DEFAULT",
        copy,
    )
    backups = backups_in(ws)
    before = table_digests(pg_cluster, copy)

    unknown = ws.run("restore", "wms", "--target-db", copy, "--table", "flim", "--yes")
    assert unknown.returncode == 1
    assert "not in this backup" in error_line(unknown)
    assert error_line(unknown).endswith("close matches: public.film")

    unfit = ws.run("restore", "wms", "--target-db", copy, "--table", "film", "--yes")
    assert unfit.returncode == 1
    assert "public.film in the target lacks column(s) description" in error_line(unfit)

    a_view = ws.run("restore", "wms", "--target-db", copy, "--table", "a.b", "--yes")
    assert a_view.returncode == 1
    assert 'public."a.b" is not a table in the target database' in error_line(a_view)

    required = ws.run("restore", "wms", "--target-db", copy, "--table", "actor", "--yes")
    assert required.returncode == 1
    assert (
        "public.actor in the target has column(s) born the backup lacks, NOT NULL without a "
        "default" in error_line(required)
    )

    assert backups_in(ws) == backups
    assert table_digests(pg_cluster, copy) == before


@on_oldest_major
def test_a_partition_the_backup_lacks_is_refused_before_anything_changes(
    pg_cluster: ScratchCluster, backup: Backup, copy: str
) -> None:
    """A partition created since the backup would keep its rows in the restored table."""
    pg_cluster.psql(
        "CREATE TABLE payment_p2030 PARTITION OF payment "
        "FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');"
        "INSERT INTO payment (customer_id, amount, payment_date) "
        "VALUES (1, 9.99, '2030-06-01 10:00+00');",
        copy,
    )
    backups = backups_in(backup.ws)
    before = table_digests(pg_cluster, copy)

    refused = backup.ws.run("restore", "wms", "--target-db", copy, "--table", "payment", "--yes")

    assert refused.returncode == 1
    assert error_line(refused).endswith(
        "public.payment in the target has partition(s) public.payment_p2030 the backup lacks, "
        "whose rows would stay: detach or drop them first"
    )
    assert backups_in(backup.ws) == backups
    assert table_digests(pg_cluster, copy) == before


def test_a_partition_missing_under_a_kept_parent_is_created_and_attached_quietly(
    pg_cluster: ScratchCluster, backup: Backup, copy: str
) -> None:
    """The partition gets the parent's key and indexes once (attached, not twice), and
    the parent's row trigger, which would write into another table, fires for none of
    the restored rows."""
    pg_cluster.psql(
        "CREATE TABLE payment_log (id int);"
        "CREATE FUNCTION log_payment() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN INSERT INTO public.payment_log VALUES (NEW.payment_id); RETURN NEW; END$$;"
        "CREATE TRIGGER log AFTER INSERT ON payment FOR EACH ROW EXECUTE FUNCTION log_payment();",
        copy,
    )
    schema_before = schema_dump(pg_cluster, copy)
    pg_cluster.psql("DROP TABLE payment_p2026_02", copy)

    result = backup.ws.run_json(
        "restore", "wms", "--target-db", copy, "--table", "payment", "--yes"
    )

    assert result["verified"] is True
    after = table_digests(pg_cluster, copy)
    for table in PAYMENT:
        assert after[table] == backup.digests[table], table
    assert pg_cluster.psql("SELECT count(*) FROM payment_log", copy) == "0"
    # the same definition, key, index attached to the parent's, trigger and grants; only
    # the owner differs: a table restore creates tables as the user it connects as
    assert without_owners(schema_dump(pg_cluster, copy)) == without_owners(schema_before)


@on_oldest_major  # the damage is found in the repository's object
def test_a_backup_found_damaged_after_its_rows_were_sent_changes_nothing(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    # about 1.5 MB stored, damaged in its last bytes: the damage is found only once the
    # session has begun to load the rows (its COPY has started), and no COMMIT may follow
    pg_cluster.psql(
        "CREATE TABLE noise AS SELECT g AS id, md5(g::text) || md5(random()::text) AS a "
        "FROM generate_series(1, 40000) g",
        fresh_db,
    )
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    made = ws.run_json("backup", "wms")["id"]
    stored = ws.repo / "wms" / "backups" / made / "dump.zst.age"
    data = bytearray(stored.read_bytes())
    data[-100] ^= 0x01
    stored.write_bytes(bytes(data))
    pg_cluster.psql("DELETE FROM noise WHERE id % 2 = 0", fresh_db)
    before = table_digests(pg_cluster, fresh_db)

    failed = ws.run("restore", "wms", "--table", "noise", "--yes")

    assert failed.returncode == 1
    assert "dump.zst.age" in error_line(failed)
    assert table_digests(pg_cluster, fresh_db) == before


def test_a_kept_table_keeps_its_own_definition_and_says_how_it_differs(
    pg_cluster: ScratchCluster, backup: Backup, copy: str
) -> None:
    pg_cluster.psql(
        "DROP INDEX film_fulltext_idx; ALTER TABLE film DROP CONSTRAINT film_rental_rate_check",
        copy,
    )
    schema_before = schema_dump(pg_cluster, copy)

    result = backup.ws.run_json("restore", "wms", "--target-db", copy, "--table", "film", "--yes")

    assert result["verified"] is True
    assert result["notes"] == [
        "index film_fulltext_idx of public.film is in the backup, not in the target's table "
        "(left as it was)",
        "constraint film_rental_rate_check of public.film is in the backup, not in the "
        "target's table (left as it was)",
    ]
    # the same definition, key, index attached to the parent's, trigger and grants; only
    # the owner differs: a table restore creates tables as the user it connects as
    assert without_owners(schema_dump(pg_cluster, copy)) == without_owners(schema_before)
    assert table_digests(pg_cluster, copy)["public.film"] == backup.digests["public.film"]


def test_a_table_missing_from_the_target_is_created(
    pg_cluster: ScratchCluster, backup: Backup, copy: str
) -> None:
    pg_cluster.psql('DROP TABLE "Sales EU"."Order Items"; DROP TABLE payment CASCADE', copy)
    before = table_digests(pg_cluster, copy)

    result = backup.ws.run_json(
        "restore",
        "wms",
        "--target-db",
        copy,
        "--table",
        "payment",
        "--table",
        '"Sales EU"."Order Items"',
        "--yes",
    )

    assert result["verified"] is True and result["notes"] == []
    after = table_digests(pg_cluster, copy)
    for table in TABLES:
        created = table in PAYMENT or table == '"Sales EU"."Order Items"'
        assert after[table] == (backup.digests[table] if created else before[table]), table
    # its foreign keys to tables the target has are back
    assert (
        pg_cluster.psql(
            "SELECT string_agg(conname, ' ' ORDER BY conname) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid IN ('payment'::regclass, "
            '\'"Sales EU"."Order Items"\'::regclass)',
            copy,
        )
        == "Order Items_customer_id_fkey payment_customer_id_fkey payment_rental_id_fkey"
    )


RESTORE_ACTOR = ("restore", "wms", "--table", "actor", "--target-db")


@on_oldest_major  # the prompt is the CLI's
def test_on_a_terminal_the_database_name_must_be_typed(
    pg_cluster: ScratchCluster, backup: Backup, copy: str
) -> None:
    pg_cluster.psql("DELETE FROM actor WHERE actor_id > 100", copy)
    before = table_digests(pg_cluster, copy)
    backups = backups_in(backup.ws)

    def restore_typing(answer: str) -> tuple[int, str]:
        terminal, keyboard = os.openpty()
        try:
            process = subprocess.Popen(
                [LIFEBOAT, "--config", str(backup.ws.config), *RESTORE_ACTOR, copy],
                stdin=keyboard,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            assert isinstance(process.stderr, io.BufferedReader)
            shown = b""
            while b"to go on: " not in shown:  # type only once asked
                chunk = process.stderr.read1(4096)
                assert chunk, shown.decode()
                shown += chunk
            os.write(terminal, answer.encode() + b"\n")
            shown += process.stderr.read()
            return process.wait(timeout=300), shown.decode()
        finally:
            os.close(terminal)
            os.close(keyboard)

    refused, said = restore_typing("not the name")
    assert f"The rows of actor in database {copy} will be replaced" in said
    assert refused == 1
    assert f"error: tables public.actor in {copy}" in said and "would be overwritten" in said
    assert table_digests(pg_cluster, copy) == before
    assert backups_in(backup.ws) == backups

    confirmed, said = restore_typing(copy)
    assert confirmed == 0, said
    assert table_digests(pg_cluster, copy)["public.actor"] == backup.digests["public.actor"]
