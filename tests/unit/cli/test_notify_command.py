"""`lifeboat notify test NAME`: a test message through one channel, one clear line when
it cannot go."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.servers.ports import refused_port
from tests.servers.receivers import http_receiver
from tests.unit.helpers import one_error_line, run, write_config

SECRET = "hmac-and-path-secret-42"


def with_channel(tmp_path: Path, table: str) -> Path:
    path = write_config(tmp_path)
    path.write_text(path.read_text() + table)
    return path


def test_a_test_message_is_delivered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFEBOAT_STATE_DIR", str(tmp_path / "state"))
    with http_receiver() as receiver:
        # a test goes through whatever the channel's filter says
        path = with_channel(
            tmp_path,
            f'[notifications.ops]\ntype = "webhook"\nurl = "{receiver.url()}"\n'
            'events = ["drill_failed"]\n',
        )
        assert run(["--config", str(path), "notify", "test", "ops"]) == 0
        assert capsys.readouterr().out == "test message delivered through ops\n"
        assert run(["--config", str(path), "notify", "test", "ops", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"channel": "ops", "delivered": True}
    assert len(receiver.received) == 2
    body = json.loads(receiver.received[0].body)
    assert body["event"] == "test" and "channel 'ops'" in body["summary"]
    assert not (tmp_path / "state").exists()  # a test is no incident


def test_an_unknown_channel_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_channel(tmp_path, '[notifications.ops]\ntype = "slack"\nurl = "http://x/y"\n')
    assert run(["--config", str(path), "notify", "test", "pager"]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        "lifeboat: error: no notification channel named 'pager' (channels: ops)"
    )


def test_an_undeliverable_test_is_one_line_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with refused_port() as port:
        path = with_channel(
            tmp_path,
            f'[notifications.ops]\ntype = "webhook"\nurl = "http://127.0.0.1:{port}/{SECRET}"\n'
            f'hmac_secret = "{SECRET}"\nretries = 0\n',
        )
        assert run(["--config", str(path), "notify", "test", "ops"]) == 1
    out, err = capsys.readouterr()
    assert one_error_line(err) == (
        "lifeboat: error: notification channel 'ops' (webhook): not delivered after 1 attempt: "
        f"cannot reach 127.0.0.1:{port}: Connection refused"
    )
    assert SECRET not in out + err


def test_a_bad_timeout_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_channel(
        tmp_path, '[notifications.ops]\ntype = "slack"\nurl = "http://x/y"\ntimeout = "soon"\n'
    )
    assert run(["--config", str(path), "notify", "test", "ops"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "notifications.ops.timeout" in line and "not a duration" in line, line
