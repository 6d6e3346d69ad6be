"""The textfile one-shot commands rewrite: their own outcome beside the others', written
whole or not at all, and never failing the command."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.metrics.runs import Run
from lifeboat.metrics.textfile import previous_runs, write_textfile
from tests.unit.helpers import run, write_config
from tests.unit.metrics_history import metrics_history, samples, value

pytestmark = pytest.mark.unit


def with_textfile(folder: Path, textfile: Path) -> Path:
    _, config = metrics_history(folder, f'[metrics]\ntextfile = "{textfile}"\n')
    return config


def test_each_command_adds_its_outcome_and_keeps_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    textfile = tmp_path / "node-exporter" / "lifeboat.prom"
    textfile.parent.mkdir()
    config = with_textfile(tmp_path, textfile)
    assert run(["--config", str(config), "verify", "wms", "--repo", "main"]) == 0
    found = samples(textfile.read_text())
    assert value(found, "lifeboat_last_run_success", kind="verify", source="wms", type="") == 1
    assert value(found, "lifeboat_repository_reachable", repository="main") == 1
    assert textfile.stat().st_mode & 0o777 == 0o644  # node_exporter runs as another user
    assert run(["--config", str(config), "prune", "wms", "--dry-run"]) == 0
    # a copy to a repository that is not configured fails: a failed run, its exit kept
    assert run(["--config", str(config), "copy", "--from", "main", "--to", "nowhere"]) == 2
    found = samples(textfile.read_text())
    assert value(found, "lifeboat_last_run_success", kind="verify", source="wms", type="") == 1
    assert value(found, "lifeboat_last_run_success", kind="prune", source="wms", type="") == 1
    assert value(found, "lifeboat_last_run_success", kind="copy", source="", type="") == 0
    verified_at = value(
        found, "lifeboat_last_run_timestamp_seconds", kind="verify", source="wms", type=""
    )
    copied_at = value(found, "lifeboat_last_run_timestamp_seconds", kind="copy", source="", type="")
    assert verified_at <= copied_at
    # only the textfile and its lock: no temporary file left behind
    assert sorted(p.name for p in textfile.parent.iterdir()) == [
        ".lifeboat.prom.lock",
        textfile.name,
    ]


def test_an_unwritable_textfile_is_one_warning_and_the_exit_is_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    config = with_textfile(tmp_path, not_a_folder / "lifeboat.prom")
    capsys.readouterr()
    assert run(["--config", str(config), "verify", "wms", "--repo", "main"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if " warning " in line]
    assert len(warnings) == 1, warnings
    assert (
        f"metrics textfile {not_a_folder / 'lifeboat.prom'} not written: Not a directory"
        in (warnings[0])
    )


def test_lifeboat_metrics_into_an_unwritable_file_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    _, config = metrics_history(tmp_path)
    capsys.readouterr()
    target = not_a_folder / "lifeboat.prom"
    assert run(["--config", str(config), "metrics", "--textfile", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"lifeboat: error: cannot write {target}: Not a directory"


def test_a_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    textfile = tmp_path / "lifeboat.prom"
    # a repository with nothing in it: the file is rewritten quickly, many times
    ctx = Context.load(small_config(tmp_path, textfile))
    write_textfile(ctx, textfile, ("backup", "wms", Run(1.0, True, 2.0), "logical"))
    families = textfile.read_text().count("# TYPE ")
    done = threading.Event()
    reads = 0
    torn: list[str] = []

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            text = textfile.read_text()
            reads += 1
            if text.count("# TYPE ") != families or not text.endswith("\n"):
                torn.append(text)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for number in range(40):
            write_textfile(
                ctx, textfile, ("backup", "wms", Run(float(number), True, 2.0), "logical")
            )
    finally:
        done.set()
        reader.join()
    assert reads and torn == []
    assert (
        value(
            samples(textfile.read_text()),
            "lifeboat_last_run_timestamp_seconds",
            kind="backup",
            source="wms",
            type="logical",
        )
        == 39.0
    )


def small_config(folder: Path, textfile: Path) -> Path:
    """One empty repository, one source: a textfile written in milliseconds."""
    config = write_config(folder)
    with config.open("a") as extra:
        extra.write(f'[metrics]\ntextfile = "{textfile}"\n')
    run(["--config", str(config), "init"])
    return config


def test_two_commands_finishing_together_both_keep_their_run(tmp_path: Path) -> None:
    textfile = tmp_path / "lifeboat.prom"
    ctx = Context.load(small_config(tmp_path, textfile))
    start = threading.Barrier(2)

    def finish(kind: str) -> None:
        start.wait()
        write_textfile(ctx, textfile, (kind, "wms", Run(1.0, True, 1.0), None))

    threads = [threading.Thread(target=finish, args=(kind,)) for kind in ("backup", "drill")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(previous_runs(textfile)) == {("backup", "wms", ""), ("drill", "wms", "")}


def test_each_backup_type_keeps_its_last_run(tmp_path: Path) -> None:
    """An hourly logical backup's success does not hide the nightly physical one's failure:
    the alert on lifeboat_last_run_success keeps firing for the physical one."""
    textfile = tmp_path / "lifeboat.prom"
    ctx = Context.load(small_config(tmp_path, textfile))
    write_textfile(ctx, textfile, ("backup", "wms", Run(1.0, False, 1.0), "physical"))
    write_textfile(ctx, textfile, ("backup", "wms", Run(2.0, True, 1.0), "logical"))
    runs = previous_runs(textfile)
    assert runs[("backup", "wms", "physical")].success is False
    assert runs[("backup", "wms", "logical")].success is True
    assert 'lifeboat_last_run_success{kind="backup",source="wms",type="physical"} 0.0' in (
        textfile.read_text()
    )


def test_a_file_that_is_not_in_the_exposition_format_holds_no_runs(tmp_path: Path) -> None:
    textfile = tmp_path / "lifeboat.prom"
    textfile.write_text("lifeboat_last_run_success{kind= 1\n")
    assert previous_runs(textfile) == {}
    assert previous_runs(tmp_path / "missing.prom") == {}
