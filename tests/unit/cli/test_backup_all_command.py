"""`lifeboat backup --all` / `--group` on the command line: the options it refuses, and
sources that fail for real (a PostgreSQL server that refuses the connection): the summary,
one error line per source, exit 1, a notification and a metrics run per source. Backups
that succeed are in tests/integration/test_backup_all.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifeboat.metrics.textfile import previous_runs
from tests.servers.receivers import http_receiver
from tests.unit.helpers import one_error_line, run, write_config

# nothing listens on port 1: the connection is refused at once
UNREACHABLE = 'dsn = "postgresql://backup@127.0.0.1:1/{name}"\n'


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = write_config(tmp_path)
    path.write_text(
        path.read_text()
        + "[sources.erp]\n"
        + UNREACHABLE.format(name="erp")
        + '[groups]\nnightly = ["erp"]\n'
        + extra
    )
    assert run(["--config", str(path), "init"]) == 0
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["wms", "--all"], "SOURCE and --all exclude each other: give one"),
        (["--all", "--group", "nightly"], "--all and --group exclude each other: give one"),
        (["--all", "--type", "physical"], "--type is for one SOURCE, not --all or --group"),
        (["--group", "nightly", "--incremental"], "--incremental is for one SOURCE"),
        (["--all", "--accept-new-cluster"], "--accept-new-cluster is for one SOURCE"),
        (["wms", "--parallel", "2"], "--parallel is for --all and --group"),
        ([], "give a SOURCE, --all or --group NAME"),
        (["--group", "weekly"], "unknown group 'weekly' (groups: nightly)"),
    ],
)
def test_refused_options_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = _config(tmp_path)
    capsys.readouterr()
    assert run(["--config", str(path), "backup", *args]) == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_failing_sources_are_each_told_and_the_run_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFEBOAT_STATE_DIR", str(tmp_path / "state"))
    textfile = tmp_path / "lifeboat.prom"
    with http_receiver() as receiver:
        path = _config(
            tmp_path,
            f'[metrics]\ntextfile = "{textfile}"\n'
            f'[notifications.hook]\ntype = "webhook"\nurl = "{receiver.url()}"\n',
        )
        path.write_text(
            path.read_text().replace(
                '"postgresql://backup@db.internal:5432/wms"',
                '"postgresql://backup@127.0.0.1:1/wms"',
            )
        )
        capsys.readouterr()
        assert run(["--config", str(path), "--json", "backup", "--all", "--parallel", "2"]) == 1
        out, err = capsys.readouterr()
        sent = [json.loads(r.body) for r in receiver.received]

    summary = json.loads(out)
    assert [s["source"] for s in summary["sources"]] == ["wms", "erp"]
    assert summary["totals"]["failed"] == 2 and summary["totals"]["succeeded"] == 0
    assert all("cannot reach database" in s["error"] for s in summary["sources"])
    lines = err.splitlines()
    assert sorted(line.split(" failed:")[0] for line in lines) == [
        "lifeboat: error: backup of erp",
        "lifeboat: error: backup of wms",
    ]
    assert sorted((m["event"], m["source"]) for m in sent) == [
        ("backup_failed", "erp"),
        ("backup_failed", "wms"),
    ]
    runs = previous_runs(textfile)
    assert runs[("backup", "wms", "logical")].success is False
    assert runs[("backup", "erp", "logical")].success is False
    # and the run as a whole, over every source
    assert runs[("backup", "", "")].success is False


def test_the_summary_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    capsys.readouterr()
    assert run(["--config", str(path), "backup", "--group", "nightly"]) == 1
    out, err = capsys.readouterr()
    assert "erp" in out and "FAILED" in out and "0 ok, 1 failed" in out
    assert "wms" not in out
    assert one_error_line(err).startswith("lifeboat: error: backup of erp failed: cannot reach")
