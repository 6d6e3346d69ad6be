"""One-shot commands notify: `lifeboat backup` and `drill` run as cron would run them, a
webhook that receives, a channel that is down, the incident remembered across runs."""

from __future__ import annotations

import json
from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster
from tests.servers.ports import refused_port
from tests.servers.receivers import http_receiver

from .helpers import error_line, make_workspace
from .versions import on_oldest_major

SECRET = "webhook-path-token-9f3a"


@on_oldest_major  # the notifications do not depend on the server's version
def test_backup_and_drill_notify_once_per_incident(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    unreachable = "postgresql://backup@127.0.0.1:1/wms?connect_timeout=5"
    ws = make_workspace(tmp_path, unreachable)
    state = {"LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
    with http_receiver() as receiver, refused_port() as down:
        channels = (
            f'\n[notifications.hook]\ntype = "webhook"\nurl = "{receiver.url()}"\n'
            f'hmac_secret = "{SECRET}"\n'
            f'\n[notifications.down]\ntype = "slack"\nurl = "http://127.0.0.1:{down}/{SECRET}"\n'
            "retries = 0\n"
        )
        ws.config.write_text(ws.config.read_text() + channels)
        failed = [ws.run("backup", "wms", env=state) for _ in range(2)]
        # the second run, a new process, knows the incident is open: no second message
        assert len(receiver.received) == 1
        ws.write_config(pg_cluster.dsn(fresh_db))
        ws.config.write_text(ws.config.read_text() + channels)
        passed = ws.run("backup", "wms", env=state)
        drilled = ws.run("drill", "wms", env=state)
    for result in failed:
        assert result.returncode == 1
        assert "127.0.0.1:1" in error_line(result)
    assert passed.returncode == 0, passed.stderr
    # the channel that is down was never told, so the repeat is tried on it again
    for result in [*failed, passed]:
        warnings = [line for line in result.stderr.splitlines() if "channel 'down'" in line]
        assert len(warnings) == 1, result.stderr
        assert f"cannot reach 127.0.0.1:{down}: Connection refused" in warnings[0]
        assert SECRET not in result.stdout + result.stderr
    assert drilled.returncode == 0, drilled.stderr
    first, recovery, drill = (json.loads(r.body) for r in receiver.received)
    assert first["event"] == "backup_failed" and first["source"] == "wms"
    assert "127.0.0.1:1" in first["details"]["error"]
    assert recovery["event"] == "backup_succeeded" and recovery["recovered"]
    assert recovery["details"]["backup_id"] == passed.stdout.strip()
    assert recovery["details"]["failures"] == 2
    assert drill["event"] == "drill_passed" and not drill["recovered"]
    assert drill["details"]["backup_id"] == passed.stdout.strip()
    assert drill["details"]["verdict"] == "PASS"
    assert isinstance(drill["details"]["rto_seconds"], float)
