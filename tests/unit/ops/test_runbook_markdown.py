"""The disaster-recovery runbook: the model built from a configuration and local
repositories (backups, drill records), its Markdown, and the command's bad input."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.errors import UsageError
from lifeboat.ops.drill_records import record_drill
from lifeboat.ops.runbook import BackupFacts, DrillFacts, RepositoryFacts, Runbook, build
from lifeboat.ops.runbook_markdown import render
from tests.unit.drill_records import make_record, write_drills_config
from tests.unit.helpers import one_error_line, run
from tests.unit.repo.test_repository import make_manifest

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CONFIG = Path("/etc/lifeboat/lifeboat.toml")


def _book(**changes: object) -> Runbook:
    logical = BackupFacts(
        id="20261130T010000.000000Z-ab12",
        kind="logical",
        finished_at=NOW - DAY,
        database="wms",
        repositories=["main", "offsite"],
        object_keys=["wms/backups/20261130T010000.000000Z-ab12/db.dump.zst.age"],
        row_counts={"public.lots": 1200, "public.orders": 7},
    )
    fields: dict[str, object] = {
        "source": "wms",
        "generated_at": NOW,
        "lifeboat_version": "0.1.0",
        "config_path": CONFIG,
        "repositories": [
            RepositoryFacts("main", "/var/backups/lifeboat", []),
            RepositoryFacts(
                "offsite", "s3://dr-bucket/lifeboat", ["AWS_ACCESS_KEY_ID"], error="denied"
            ),
        ],
        "newest": {"logical": logical},
        "archives_wal": False,
        "encryption_method": "age",
        "key_setting": "encryption.age_identity_file = /etc/lifeboat/age.key",
        "rto_objective": "4h",
        "drills": {"logical": DrillFacts("drill-1", "logical", logical.id, NOW - 2 * DAY, 95.5)},
    }
    fields.update(changes)
    return Runbook(**fields)  # type: ignore[arg-type]


def test_the_runbook_names_backups_commands_keys_and_the_drills_rto() -> None:
    text = render(_book())
    assert text.startswith("# Disaster-recovery runbook: wms\n")
    assert "Generated 2026-12-01 03:00:00 UTC by Lifeboat 0.1.0" in text
    assert (
        "newest **logical** backup: `20261130T010000.000000Z-ab12`, finished "
        "2026-11-30 03:00:00 UTC, held by main, offsite"
    ) in text
    assert (
        "lifeboat --config /etc/lifeboat/lifeboat.toml restore wms "
        "--backup 20261130T010000.000000Z-ab12\n"
    ) in text
    assert "--target-db wms_restored" in text
    assert "1. `main`: /var/backups/lifeboat" in text
    assert "2. `offsite`: s3://dr-bucket/lifeboat (**could not be read" in text
    assert "encryption.age_identity_file = /etc/lifeboat/age.key" in text
    assert "repository `offsite`: AWS_ACCESS_KEY_ID" in text
    assert "- logical: RTO 1 min 36 s in drill `drill-1` of 2026-11-29 03:00:00 UTC" in text
    assert "Recovery time objective: 4h." in text
    assert "  - `wms/backups/20261130T010000.000000Z-ab12/db.dump.zst.age`" in text
    assert "| `public.lots` | 1200 |" in text
    assert "docs/manual-restore.md" in text
    assert "No contacts are configured" in text
    assert "`[sources.wms.runbook] contacts`" in text
    # no point-in-time recovery without a WAL archive
    assert "--pgdata" not in text


def test_the_configured_contacts_are_whom_to_notify() -> None:
    text = render(_book(contacts=["On call: +44 20 7946 0000", "DBA: dba@example.com"]))
    notify = text.split("## Whom to notify\n")[1]
    assert notify == "\n- On call: +44 20 7946 0000\n- DBA: dba@example.com\n"


def test_without_a_drill_the_runbook_says_the_duration_is_unknown() -> None:
    text = render(_book(drills={}))
    assert "**No restore drill has passed yet: the time a restore takes is unknown.**" in text
    duration = text.split("## Expected duration")[1].split("\n## ")[0]
    assert "- logical: RTO" not in duration
    assert "lifeboat --config /etc/lifeboat/lifeboat.toml drill wms" in duration


def test_a_source_archiving_wal_gets_the_point_in_time_recovery_command() -> None:
    text = render(_book(archives_wal=True))
    assert (
        "lifeboat --config /etc/lifeboat/lifeboat.toml restore wms --pgdata "
        "/var/lib/postgresql/restored --to-time 'YYYY-MM-DD HH:MM:SS+00' --start"
    ) in text
    assert "WAL is archived but no physical backup was found" in text


def test_a_physical_backup_is_named_as_the_base_of_point_in_time_recovery() -> None:
    physical = BackupFacts(
        id="20261130T020000.000000Z-cd34",
        kind="physical",
        finished_at=NOW - DAY,
        database="",
        repositories=["main"],
        object_keys=["wms/backups/20261130T020000.000000Z-cd34/base.tar.zst.age"],
        row_counts={},
    )
    text = render(_book(archives_wal=True, newest={"physical": physical}, drills={}))
    assert "newest: `20261130T020000.000000Z-cd34`" in text
    assert "WAL is archived but no physical backup" not in text
    assert "### Logical restore" not in text
    assert "  - `wms/backups/20261130T020000.000000Z-cd34/base.tar.zst.age`" in text


def test_a_source_without_backups_says_so() -> None:
    text = render(_book(newest={}, drills={}))
    assert "**No backup of this source was found in any repository.**" in text
    assert "there is no command to give" in text
    assert "restore wms --backup" not in text


def test_the_model_is_read_from_the_repositories_and_drill_records(tmp_path: Path) -> None:
    config = write_drills_config(tmp_path)
    with config.open("a", encoding="utf-8") as file:
        file.write('[sources.wms.runbook]\ncontacts = ["On call: +44 20 7946 0000"]\n')
    ctx = Context.load(config)
    older = make_manifest(when=NOW - 3 * DAY)
    newer = make_manifest(when=NOW - DAY)
    for manifest in (older, newer):
        ctx.repository("main").save_manifest(manifest)
    record_drill([ctx.repository("main")], make_record(older.id, NOW - 2 * DAY, rto_seconds=80.0))
    record_drill(
        [ctx.repository("main")], make_record(newer.id, NOW - DAY / 2, "fail", rto_seconds=999.0)
    )
    book = build(ctx, "wms", NOW)
    assert list(book.newest) == ["logical"]
    assert book.newest["logical"].id == newer.id
    assert book.newest["logical"].repositories == ["main"]
    assert book.config_path == config.resolve()
    # the newest PASSED drill gives the expected duration, not a failed one after it
    assert book.drills["logical"].backup == older.id
    assert book.drills["logical"].rto_seconds == 80.0
    assert [r.name for r in book.repositories] == ["main"]
    assert book.archives_wal is False
    assert book.contacts == ["On call: +44 20 7946 0000"]


def test_an_unreadable_repository_is_named_and_the_command_exits_1_after_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_drills_config(tmp_path)
    shutil.rmtree(tmp_path / "main")  # the source's only repository is gone
    book = build(Context.load(config), "wms", NOW)
    [main] = book.unreadable
    assert main.name == "main"
    assert main.error is not None and "not initialised" in main.error
    # the copy target offsite is still read for drill records; main's are named unread
    assert book.drills_error is not None and book.drills_error.startswith("main: ")
    text = render(book)
    assert "`main`: " in text and "**could not be read when this runbook was written**" in text
    assert "**Drill records could not be read (main: " in text

    target = tmp_path / "RUNBOOK.md"
    assert run(["--config", str(config), "runbook", "wms", "--output", str(target)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # a warning as the drill records are read, then the one error line
    *_, line = err.splitlines()
    assert line.startswith("lifeboat: error: repository main cannot be read: ")
    assert line.endswith("the runbook says so")
    assert target.read_text(encoding="utf-8").startswith("# Disaster-recovery runbook: wms\n")


def test_a_gpg_configuration_names_the_key_and_its_home(tmp_path: Path) -> None:
    config = write_drills_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    start = text.index("[encryption]")
    end = text.index("[sources.wms]")
    config.write_text(
        text[:start]
        + '[encryption]\ngpg_recipients = ["backup@example.com"]\n'
        + f'gpg_homedir = "{tmp_path / "gnupg"}"\n'
        + text[end:],
        encoding="utf-8",
    )
    book = build(Context.load(config), "wms", NOW)
    assert book.encryption_method == "gpg"
    assert book.key_setting == (
        f"the secret key of backup@example.com in the GPG home {tmp_path / 'gnupg'}"
    )
    assert "- decryption (gpg): the secret key of backup@example.com" in render(book)


def test_an_unknown_source_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown source 'nope'"):
        build(Context.load(write_drills_config(tmp_path)), "nope", NOW)


def test_the_command_exits_2_on_an_unknown_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_drills_config(tmp_path)
    assert run(["--config", str(config), "runbook", "nope"]) == 2
    assert "unknown source 'nope'" in one_error_line(capsys.readouterr().err)


def test_the_command_exits_1_on_an_unwritable_output_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_drills_config(tmp_path)
    target = tmp_path / "no-such-folder" / "RUNBOOK.md"
    assert run(["--config", str(config), "runbook", "wms", "--output", str(target)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot write the runbook to {target}: No such file or directory" in line
    assert not target.exists()


def test_the_command_writes_the_runbook_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_drills_config(tmp_path)
    target = tmp_path / "RUNBOOK.md"
    assert run(["--config", str(config), "runbook", "wms", "--output", str(target)]) == 0
    assert f"runbook of wms written to {target}" in capsys.readouterr().out
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Disaster-recovery runbook: wms\n")
    assert f"`{config.resolve()}`" in text
