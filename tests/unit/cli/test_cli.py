"""The `lifeboat` command line: exit codes, one-line errors, keygen, init and list."""

from __future__ import annotations

import json
import re
import stat
from importlib.metadata import version
from pathlib import Path

import pytest

from lifeboat.pipeline.crypto import AgeDecryptor, read_age_identities
from tests.unit.helpers import one_error_line, run, write_config

# --- keygen ----------------------------------------------------------------------------------


def test_keygen_writes_private_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "age.key"
    assert run(["keygen", "--output", str(key)]) == 0
    out, err = capsys.readouterr()
    public = out.strip()
    assert out == public + "\n"
    assert re.fullmatch(r"age1[0-9a-z]{58}", public)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    lines = key.read_text().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", lines[0])
    assert lines[1] == f"# public key: {public}"
    assert lines[2].startswith("AGE-SECRET-KEY-1")
    assert lines[2] not in out + err
    # the file is usable as an identity file and matches the printed recipient
    identities = read_age_identities(key)
    assert [str(i.to_public()) for i in identities] == [public]  # type: ignore[attr-defined]
    assert AgeDecryptor(key).public_keys() == [public]


def test_keygen_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "age.key"
    assert run(["keygen", "-o", str(key), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["identity_file"] == str(key)
    assert f"# public key: {document['public_key']}" in key.read_text()


def test_keygen_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "age.key"
    key.write_text("precious\n")
    assert run(["keygen", "--output", str(key)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = one_error_line(err)
    assert str(key) in line
    assert "--force" in line
    assert key.read_text() == "precious\n"


def test_keygen_force_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "age.key"
    key.write_text("old\n")
    key.chmod(0o644)
    assert run(["keygen", "--output", str(key), "--force"]) == 0
    public = capsys.readouterr().out.strip()
    assert f"# public key: {public}" in key.read_text()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_keygen_needs_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keygen"]) == 2
    assert "--output" in capsys.readouterr().err


def test_keygen_needs_no_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./lifeboat.toml here
    assert run(["keygen", "-o", "k"]) == 0
    assert (tmp_path / "k").exists()


# --- errors and exit codes ---------------------------------------------------------------------


def test_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    assert run(["--config", str(missing), "list"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = one_error_line(err)
    assert str(missing) in line
    assert "not found" in line


def test_default_config_is_looked_up_in_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["list"]) == 2
    assert "lifeboat.toml" in one_error_line(capsys.readouterr().err)


def test_config_from_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path)
    monkeypatch.setenv("LIFEBOAT_CONFIG", str(config))
    assert run(["init"]) == 0
    assert "initialised" in capsys.readouterr().out


def test_invalid_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "[encryption.extra]\nfoo = 1\n")
    assert run(["--config", str(config), "list"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(config) in line


def test_config_error_does_not_echo_a_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the validation message quotes the bad value; the CLI redacts it on the way out
    config = tmp_path / "lifeboat.toml"
    config.write_text(
        '[repositories.local]\nurl = "/srv/repo"\n'
        '[encryption]\nage_recipients = ["postgresql://u:hunter2@h/x"]\n'
    )
    assert run(["--config", str(config), "list"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "is not an age public key" in line
    assert "postgresql://u:***@h/x" in line
    assert "hunter2" not in line


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "frobnicate" in err
    assert "Traceback" not in err


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--no-such-flag", "list"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lifeboat")
    assert version("lifeboat-backup") in out


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("init", "keygen", "backup", "list", "restore", "verify"):
        assert name in out


# --- init and list -----------------------------------------------------------------------------


def test_init_then_list_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert run(["--config", str(config), "init"]) == 0
    out = capsys.readouterr().out
    assert "repository local" in out
    assert "initialised" in out
    marker = json.loads((tmp_path / "repo" / "lifeboat-repo.json").read_text())
    assert marker["format_version"] == 1

    assert run(["--config", str(config), "list", "--json"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out) == []
    assert out.strip() == "[]"


def test_init_is_idempotent_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert run(["--config", str(config), "init", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert run(["--config", str(config), "--json", "init"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert [r["created"] for r in first] == [True]
    assert [r["created"] for r in second] == [False]
    assert first[0]["repository_id"] == second[0]["repository_id"]
    assert first[0]["url"] == f"file://{tmp_path / 'repo'}"


def test_list_text_without_backups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    run(["--config", str(config), "init"])
    capsys.readouterr()
    assert run(["--config", str(config), "list"]) == 0
    assert "no backups in local" in capsys.readouterr().out


def test_list_uninitialised_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert run(["--config", str(config), "list"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    line = one_error_line(err)
    assert "not initialised" in line
    assert "lifeboat init" in line


def test_list_unknown_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    run(["--config", str(config), "init"])
    capsys.readouterr()
    assert run(["--config", str(config), "list", "nosuchsource"]) == 2
    assert "unknown source 'nosuchsource'" in one_error_line(capsys.readouterr().err)


def test_list_unknown_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert run(["--config", str(config), "list", "--repo", "offsite"]) == 2
    assert "unknown repository 'offsite'" in one_error_line(capsys.readouterr().err)
